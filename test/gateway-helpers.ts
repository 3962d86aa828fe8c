/**
 * Shared harness for the gateway tests: certificates minted with the openssl CLI in a temp dir (root CA,
 * server, clients, an expired client, a foreign CA), a small real implementation of the gateway's auth ports
 * (prefix rules), a gateway on 127.0.0.1:0, real MQTT.js clients and raw TLS sockets.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { TestContext } from 'node:test'
import { connect as mqttConnect } from 'mqtt'
import type { IClientOptions, MqttClient, Packet as ClientPacket } from 'mqtt'
import { generate, parser as createParser } from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import { Gateway } from '../src/gateway/index.ts'
import type {
  AuditSink, AuthenticationResult, ConnectAttributes, ConnectionAuthenticator, ConnectionRequest, GatewayAuditEvent,
  GatewayDecision, GatewayLimits, GatewayOptions, RetainedStore, SessionAuthorizer, SessionAuthorizerFactory,
  SessionContext, SessionPrincipal, SessionStore,
} from '../src/gateway/index.ts'
import type { Clock } from '../src/core/index.ts'

// ---- certificates ---------------------------------------------------------------------------------------

/** PEM material for one identity. */
export interface Identity {
  readonly cert: string
  readonly key: string
  readonly fingerprint256: string
}

/** All certificates a test file needs. */
export interface TestPki {
  readonly dir: string
  readonly caCert: string
  readonly server: Identity
  /** Client identities by common name. */
  readonly clients: ReadonlyMap<string, Identity>
  readonly expired: Identity
  readonly foreignCaCert: string
  /** A client certificate signed by the foreign CA. */
  readonly foreign: Identity
  client (name: string): Identity
}

function openssl (args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

function ecKey (dir: string, name: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir)
}

function selfSignedCa (dir: string, name: string, cn: string): void {
  ecKey(dir, name)
  openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
}

function issue (dir: string, ca: string, name: string, cn: string, ext: string): Identity {
  ecKey(dir, name)
  openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir)
  writeFileSync(join(dir, `${name}.ext`), ext)
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '7', '-extfile', `${name}.ext`], dir)
  return load(dir, name)
}

function load (dir: string, name: string): Identity {
  const cert = readFileSync(join(dir, `${name}.pem`), 'utf8')
  return { cert, key: readFileSync(join(dir, `${name}.key`), 'utf8'), fingerprint256: new X509Certificate(cert).fingerprint256 }
}

const CLIENT_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'

/** Mints a root CA, a server certificate (localhost, 127.0.0.1), client certificates, an expired one and a foreign CA. */
export function createPki (clientNames: readonly string[]): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'tw-gw-pki-'))
  selfSignedCa(dir, 'ca', 'Thingward Test Root CA')
  selfSignedCa(dir, 'foreign-ca', 'Foreign CA')
  const server = issue(dir, 'ca', 'server', 'localhost',
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n')
  const clients = new Map<string, Identity>()
  for (const name of clientNames) clients.set(name, issue(dir, 'ca', `client-${name}`, name, CLIENT_EXT))
  const foreign = issue(dir, 'foreign-ca', 'foreign', 'foreign-device', CLIENT_EXT)
  // An expired certificate needs explicit dates: `openssl ca` with a throwaway configuration.
  ecKey(dir, 'expired')
  openssl(['req', '-new', '-key', 'expired.key', '-out', 'expired.csr', '-subj', '/CN=expired-device'], dir)
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '1000\n')
  writeFileSync(join(dir, 'ca.cnf'), [
    '[ ca ]', 'default_ca = tw', '[ tw ]', `dir = ${dir}`, 'database = $dir/index.txt', 'serial = $dir/serial',
    'new_certs_dir = $dir', 'certificate = $dir/ca.pem', 'private_key = $dir/ca.key', 'default_md = sha256',
    'policy = any', 'unique_subject = no', 'email_in_dn = no', 'copy_extensions = none', 'x509_extensions = ext',
    '[ any ]', 'commonName = supplied', '[ ext ]', 'basicConstraints = CA:FALSE', 'extendedKeyUsage = clientAuth', '',
  ].join('\n'))
  openssl(['ca', '-batch', '-config', 'ca.cnf', '-in', 'expired.csr', '-out', 'expired.pem', '-notext',
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z'], dir)
  const expired = load(dir, 'expired')
  return {
    dir,
    caCert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    server,
    clients,
    expired,
    foreignCaCert: readFileSync(join(dir, 'foreign-ca.pem'), 'utf8'),
    foreign,
    client (name: string): Identity {
      const id = clients.get(name)
      if (id === undefined) throw new Error(`no test certificate for ${name}`)
      return id
    },
  }
}

// ---- a real, small implementation of the auth ports: prefix rules --------------------------------------

/** Allowed resources: an entry ending in `*` is a prefix, anything else must match exactly. */
export interface PrefixRules {
  /** Client ids this principal may connect as; `${cn}` stands for the certificate's common name. */
  readonly connect: readonly string[]
  readonly publish: readonly string[]
  readonly subscribe: readonly string[]
  readonly receive: readonly string[]
  /** Topics this principal may retain on (iot:RetainPublish); defaults to `publish`. */
  readonly retain?: readonly string[]
}

export const ALLOW_ALL: PrefixRules = { connect: ['*'], publish: ['*'], subscribe: ['*'], receive: ['*'] }

function matches (patterns: readonly string[], value: string, cn: string): string | undefined {
  for (const raw of patterns) {
    const p = raw.replaceAll('${cn}', cn)
    if (p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : value === p) return raw
  }
  return undefined
}

/**
 * ConnectionAuthenticator + SessionAuthorizerFactory over an in-memory certificate registry: certificates are
 * registered by fingerprint (ACTIVE/REVOKED), principals carry their common name, and rules are looked up by
 * principal when the authorizer is compiled, so changing rules and calling `reauthorizeSessions` takes effect.
 */
export class PrefixPolicy implements ConnectionAuthenticator, SessionAuthorizerFactory {
  readonly #certs = new Map<string, { principalId: string, certificateId: string, status: 'ACTIVE' | 'REVOKED' }>()
  readonly #rules = new Map<string, PrefixRules>()
  #defaultRules: PrefixRules
  /** Every authentication request seen, for assertions (e.g. resumed TLS sessions are still checked). */
  readonly requests: ConnectionRequest[] = []

  constructor (defaultRules: PrefixRules = ALLOW_ALL) { this.#defaultRules = defaultRules }

  register (identity: Identity, principalId: string, rules?: PrefixRules): void {
    this.#certs.set(identity.fingerprint256, { principalId, certificateId: `cert-${principalId}`, status: 'ACTIVE' })
    if (rules !== undefined) this.#rules.set(principalId, rules)
  }

  revoke (identity: Identity): void {
    const c = this.#certs.get(identity.fingerprint256)
    if (c !== undefined) c.status = 'REVOKED'
  }

  setRules (principalId: string, rules: PrefixRules): void { this.#rules.set(principalId, rules) }

  authenticate (req: ConnectionRequest): AuthenticationResult {
    this.requests.push(req)
    const c = this.#certs.get(req.fingerprint256)
    if (c === undefined) return { ok: false, reason: 'certificate-not-registered' }
    if (c.status !== 'ACTIVE') return { ok: false, reason: 'certificate-revoked' }
    if (Date.parse(req.certificate.validTo) < Date.now()) return { ok: false, reason: 'certificate-expired' }
    return { ok: true, principal: { id: c.principalId, certificateId: c.certificateId } }
  }

  create (principal: SessionPrincipal, _context: SessionContext): SessionAuthorizer {
    const rules = this.#rules.get(principal.id) ?? this.#defaultRules
    const cn = principal.id
    const decision = (patterns: readonly string[], value: string, action: string): GatewayDecision => {
      const hit = matches(patterns, value, cn)
      return hit === undefined
        ? { allowed: false, reason: 'no-matching-statement' }
        : { allowed: true, statement: `${cn}:${action}:${hit}` }
    }
    return {
      authorizeConnect: (a: ConnectAttributes) => decision(rules.connect, a.clientId, 'connect'),
      authorizePublish: (topic: string, retain: boolean) => {
        const d = decision(rules.publish, topic, 'publish')
        if (!d.allowed || !retain) return d
        return decision(rules.retain ?? rules.publish, topic, 'retain')
      },
      authorizeSubscribe: (filter: string) => decision(rules.subscribe, filter, 'subscribe'),
      authorizeReceive: (topic: string) => decision(rules.receive, topic, 'receive'),
    }
  }
}

/** An AuditSink that keeps events in memory. */
export class MemoryAudit implements AuditSink {
  readonly events: GatewayAuditEvent[] = []
  record (event: GatewayAuditEvent): void { this.events.push(event) }
  find (predicate: Partial<GatewayAuditEvent>): GatewayAuditEvent[] {
    return this.events.filter((e) => Object.entries(predicate).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v))
  }
}

// ---- the gateway under test ----------------------------------------------------------------------------

/** Limits that keep tests fast and deterministic; individual tests override more. */
export const TEST_LIMITS: Partial<GatewayLimits> = {
  connectAttemptsPerClientIdPerSecond: 1000,
  keepAliveMinSec: 0,
  publishesPerSecond: 100_000,
  publishBytesPerSecond: 1e9,
}

export interface TestGatewayOptions {
  readonly limits?: Partial<GatewayLimits>
  readonly policy?: PrefixPolicy
  readonly sessionStore?: SessionStore
  readonly retainedStore?: RetainedStore
  readonly clock?: Clock
  readonly housekeepingIntervalMs?: number
  /** Register every client certificate of the PKI with ALLOW_ALL rules (default true). */
  readonly registerAll?: boolean
  readonly publicTopics?: readonly string[]
}

export interface TestGateway {
  readonly gw: Gateway
  readonly port: number
  readonly policy: PrefixPolicy
  readonly audit: MemoryAudit
  readonly pki: TestPki
  readonly errors: unknown[]
  /** Connects a real MQTT.js client with a client certificate (by common name). */
  client (name: string, opts?: IClientOptions): Promise<MqttClient>
  /** TLS options for a given identity. */
  tls (identity: Identity): { key: string, cert: string, ca: string }
  /** Opens a raw mTLS socket. */
  raw (name: string | Identity): Promise<RawClient>
  stop (): Promise<void>
}

export async function startGateway (t: TestContext, pki: TestPki, opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const policy = opts.policy ?? new PrefixPolicy()
  if (opts.registerAll !== false) for (const [name, id] of pki.clients) policy.register(id, name)
  const audit = new MemoryAudit()
  const errors: unknown[] = []
  const gwOpts: GatewayOptions = {
    tls: { cert: pki.server.cert, key: pki.server.key, ca: [pki.caCert] },
    authenticator: policy,
    authorizers: policy,
    audit,
    limits: { ...TEST_LIMITS, ...opts.limits },
    housekeepingIntervalMs: opts.housekeepingIntervalMs ?? 50,
    onError: (err) => { errors.push(err) },
    ...(opts.sessionStore === undefined ? {} : { sessionStore: opts.sessionStore }),
    ...(opts.retainedStore === undefined ? {} : { retainedStore: opts.retainedStore }),
    ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    ...(opts.publicTopics === undefined ? {} : { publicTopics: opts.publicTopics }),
  }
  const gw = new Gateway(gwOpts)
  const { port } = await gw.start({ host: '127.0.0.1', port: 0 })
  const clients: MqttClient[] = []
  const raws: RawClient[] = []
  let stopped = false
  const tls = (identity: Identity): { key: string, cert: string, ca: string } => ({ key: identity.key, cert: identity.cert, ca: pki.caCert })
  const h: TestGateway = {
    gw,
    port,
    policy,
    audit,
    pki,
    errors,
    tls,
    async client (name: string, o: IClientOptions = {}): Promise<MqttClient> {
      const c = mqttConnect(`mqtts://127.0.0.1:${port}`, {
        ...tls(pki.client(name)),
        rejectUnauthorized: true,
        clientId: name,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        protocolVersion: 5,
        ...o,
      })
      recordEarlyMessages(c)
      clients.push(c)
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => { resolve() })
        c.once('error', reject)
        c.once('close', () => { reject(new Error('connection closed before CONNACK')) })
      })
      return c
    },
    async raw (name: string | Identity): Promise<RawClient> {
      const id = typeof name === 'string' ? pki.client(name) : name
      const r = await RawClient.open(port, tls(id))
      raws.push(r)
      return r
    },
    async stop (): Promise<void> {
      if (stopped) return
      stopped = true
      for (const c of clients) c.end(true)
      for (const r of raws) r.socket.destroy()
      await gw.stop()
    },
  }
  t.after(() => h.stop())
  return h
}

// ---- raw client --------------------------------------------------------------------------------------

/** A raw mTLS socket speaking bytes, decoding what the server sends with mqtt-packet. */
export class RawClient {
  readonly socket: TLSSocket
  readonly packets: Packet[] = []
  readonly closed: Promise<void>
  #waiters: Array<() => void> = []
  #version: 4 | 5 = 4
  #parser = createParser({ protocolVersion: 4 })

  private constructor (socket: TLSSocket) {
    this.socket = socket
    this.closed = new Promise((resolve) => { socket.once('close', () => { resolve(); this.#wake() }) })
    socket.on('error', () => {})
    this.#parser.on('packet', (p: Packet) => { this.packets.push(p); this.#wake() })
    socket.on('data', (chunk: Buffer) => { this.#parser.parse(chunk) })
  }

  static open (port: number, tls: { key: string, cert: string, ca: string }, extra: Record<string, unknown> = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...tls, ...extra }, () => { resolve(new RawClient(s)) })
      s.once('error', reject)
    })
  }

  #wake (): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  /** Switches the decoder's protocol version (for v5 CONNACK/DISCONNECT properties). */
  useVersion (v: 4 | 5): void {
    this.#version = v
    this.#parser = createParser({ protocolVersion: v })
    this.#parser.on('packet', (p: Packet) => { this.packets.push(p); this.#wake() })
  }

  write (bytes: Buffer | number[]): void { this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)) }

  send (packet: Packet): void { this.write(generate(packet, { protocolVersion: this.#version })) }

  /** Sends CONNECT (v4 unless given) and waits for CONNACK. */
  async connect (clientId: string, o: Partial<import('mqtt-packet').IConnectPacket> = {}): Promise<Packet> {
    const version = o.protocolVersion === 5 ? 5 : 4
    this.useVersion(version)
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 0, clientId, ...o })
    return this.next('connack')
  }

  /** Resolves with the next packet of the given type (already received ones included), or rejects on close. */
  async next (cmd: Packet['cmd'], timeoutMs = 3000): Promise<Packet> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.packets.findIndex((p) => p.cmd === cmd)
      if (i >= 0) return this.packets.splice(i, 1)[0]
      if (this.socket.destroyed || this.socket.closed) throw new Error(`connection closed before ${cmd}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${cmd}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  /** Resolves when the server closed the connection (rejects after the timeout). */
  async waitClosed (timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.closed,
      new Promise<void>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('connection not closed')) }, timeoutMs) }),
    ]).finally(() => { clearTimeout(timer) })
  }
}

// ---- MQTT.js helpers -----------------------------------------------------------------------------------

export interface Received {
  readonly topic: string
  readonly payload: string
  readonly packet: ClientPacket & { cmd: 'publish', retain: boolean, qos: number, dup: boolean, properties?: Record<string, unknown> }
}

/**
 * Messages a client received before a test attached its Inbox. The gateway coalesces writes per event-loop turn,
 * so a resumed session's queued messages can arrive in the same TLS record as CONNACK and be emitted before
 * `connectAsync` resolves; `earlyMessages` (installed by {@link startGateway}'s `client`) keeps them for the Inbox.
 */
const early = new WeakMap<MqttClient, Received[]>()
export function recordEarlyMessages (client: MqttClient): void {
  const list: Received[] = []
  early.set(client, list)
  const onMessage = (topic: string, payload: Buffer, packet: unknown): void => { list.push({ topic, payload: payload.toString(), packet: packet as Received['packet'] }) }
  client.on('message', onMessage)
  early.set(client, list)
  inboxDetach.set(client, () => { client.off('message', onMessage) })
}
const inboxDetach = new WeakMap<MqttClient, () => void>()

/** Records every message a client receives and lets a test await the n-th one. */
export class Inbox {
  readonly messages: Received[] = []
  #waiters: Array<() => void> = []

  constructor (client: MqttClient) {
    const before = early.get(client)
    if (before !== undefined) {
      this.messages.push(...before)
      inboxDetach.get(client)?.()
      early.delete(client)
    }
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString(), packet: packet as Received['packet'] })
      const w = this.#waiters
      this.#waiters = []
      for (const f of w) f()
    })
  }

  /** Waits until a message on `topic` (and optional payload) arrived; returns it. */
  async waitFor (topic: string, payload?: string, timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.messages.find((x) => x.topic === topic && (payload === undefined || x.payload === payload))
      if (m !== undefined) return m
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${topic} ${payload ?? ''}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  on (topic: string): Received[] { return this.messages.filter((m) => m.topic === topic) }
}

/**
 * Ordering barrier for negative tests: messages from one publisher are routed in order, so once the sentinel
 * published after the event has arrived, anything the event would have delivered has arrived too.
 */
export async function barrier (publisher: MqttClient, inbox: Inbox, topic = 'sentinel/barrier'): Promise<void> {
  const payload = `b-${Math.random()}`
  await publisher.publishAsync(topic, payload, { qos: 1 })
  await inbox.waitFor(topic, payload)
}

/** Resolves when the client emits 'close'. */
export function closed (client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected && client.disconnected) { resolve(); return }
    client.once('close', () => { resolve() })
  })
}

export function cleanupPki (pki: TestPki): void {
  rmSync(pki.dir, { recursive: true, force: true })
}

/** Polls `predicate` on each macrotask until it holds (for server-side effects of a client-side close). */
export async function waitUntil (predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}
