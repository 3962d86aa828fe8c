import { Command, Option } from 'commander'
import { createPublicKey, X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import cliProgress from 'cli-progress'
import { createApp, createDeviceHttpServer, createGatewayServer, createHttpServer, initPlatform } from '../app.ts'
import type { App } from '../app.ts'
import type { Config } from '../config/index.ts'
import { loadConfig } from '../config/index.ts'
import { AppError } from '../core/index.ts'
import { createCsr, generateKeyPair } from '../pki/index.ts'
import { ROLES, ROLE_INFO, ROLE_TEMPLATES } from '../policy/index.ts'
import type { RoleName } from '../policy/index.ts'
import { ApiClient, ApiError, seg } from './client.ts'
import { writeFileAtomic } from './files.ts'
import { registerAuditCommands } from './audit.ts'
import { registerSchemaCommands } from './schemas.ts'
import { registerIamCommands } from './iam.ts'

/** What the CLI needs from its process; main.ts supplies the real ones (only it touches process.*). */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly cwd: string
  readonly stdout: (s: string) => void
  readonly stderr: (s: string) => void
  readonly isTty: boolean
  /** The stream progress bars draw on (stderr). */
  readonly progressStream: NodeJS.WritableStream
  /** Sets the process exit code (a command that found problems exits non-zero). */
  readonly setExitCode: (code: number) => void
  /** Registers a shutdown handler for SIGINT/SIGTERM. */
  readonly onShutdown: (fn: () => Promise<void>) => void
}

function readConfigFile (io: CliIo): unknown {
  const path = io.env.THINGWARD_CONFIG ?? join(io.cwd, 'thingward.config.json')
  if (!existsSync(path)) {
    if (io.env.THINGWARD_CONFIG !== undefined) throw new AppError('ERR_CONFIG_INVALID', 'invalid configuration: THINGWARD_CONFIG names a file that does not exist', { path })
    return {}
  }
  try { return JSON.parse(readFileSync(path, 'utf8')) } catch {
    throw new AppError('ERR_CONFIG_INVALID', 'invalid configuration: the config file is not valid JSON', { path })
  }
}

function configFor (io: CliIo, opts: { data?: string, dev?: boolean }): Config {
  return loadConfig(io.env, readConfigFile(io), { dataDir: opts.data, devMode: opts.dev === true ? true : undefined })
}

function clientFor (io: CliIo, o: object, anonymous = false): ApiClient {
  const opts = o as { endpoint?: string, caFile?: string, data?: string }
  const env = io.env
  const accessKeyId = env.THINGWARD_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID ?? (anonymous ? '' : undefined)
  const secretAccessKey = env.THINGWARD_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY ?? (anonymous ? '' : undefined)
  // Temporary credentials (`thingward login`, STS) carry a session token.
  const sessionToken = env.THINGWARD_SESSION_TOKEN ?? env.AWS_SESSION_TOKEN
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    throw new AppError('ERR_AUTH_MISSING', 'no credentials: set THINGWARD_ACCESS_KEY_ID and THINGWARD_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run thingward login')
  }
  const endpoint = opts.endpoint ?? env.THINGWARD_ENDPOINT ?? `https://127.0.0.1:${env.THINGWARD_HTTP_PORT ?? '8443'}`
  const dataDir = opts.data ?? env.THINGWARD_DATA_DIR ?? './data'
  const caFile = opts.caFile ?? env.THINGWARD_CA_FILE ?? join(resolve(io.cwd, dataDir), 'ca.pem')
  const ca = existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined
  return new ApiClient({ endpoint, region: env.THINGWARD_REGION ?? env.AWS_REGION ?? 'local-1', accessKeyId, secretAccessKey, sessionToken, ca })
}

const print = (io: CliIo, v: unknown): void => { io.stdout(`${JSON.stringify(v, null, 2)}\n`) }

async function withApp<T> (io: CliIo, opts: { data?: string, dev?: boolean }, fn: (app: App) => Promise<T>): Promise<T> {
  const app = await createApp(configFor(io, opts))
  try { return await fn(app) } finally { await app.close() }
}

/** Runs `thingward init` on an opened app; writes the public CA chain next to the database. */
async function init (app: App, adminUser?: string): Promise<{ accessKeyId: string, secretAccessKey: string, userName: string } | undefined> {
  const creds = await initPlatform(app, adminUser)
  writeFileAtomic(join(app.config.dataDir, 'ca.pem'), await app.certificates.caChainPem(), 0o644)
  return creds
}

export function buildProgram (io: CliIo): Command {
  const program = new Command('thingward')
    .description('Thingward: self-hosted IoT security platform')
    .showHelpAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
  const dataOpt = (): Option => new Option('--data <dir>', 'data directory (default ./data or THINGWARD_DATA_DIR)')
  const apiOpts = (c: Command): Command => c.option('--endpoint <url>', 'API endpoint (default https://127.0.0.1:8443 or THINGWARD_ENDPOINT)')
    .option('--ca-file <file>', 'CA chain to trust (default <data>/ca.pem or THINGWARD_CA_FILE)').addOption(dataOpt())

  program.command('init').description('create the data directory, CA hierarchy and the first administrator: an IAM user with the admin role and one access key (printed once; no password until you set one)')
    .addOption(dataOpt()).option('--dev', 'development mode: generate the master key file if none is configured').option('--json', 'print JSON for scripts')
    .option('--admin-user <name>', 'name of the first administrator', 'admin')
    .action(async (o: { data?: string, dev?: boolean, json?: boolean, adminUser: string }) => {
      await withApp(io, o, async (app) => {
        const creds = await init(app, o.adminUser)
        const caFile = resolve(io.cwd, app.config.dataDir, 'ca.pem')
        const endpoint = `https://${app.config.http.host}:${app.config.http.port}`
        if (creds === undefined) {
          if (o.json === true) print(io, { initialized: false, caFile, endpoint })
          else io.stdout(`Already initialized in ${app.config.dataDir}; CA chain: ${caFile}\n`)
          return
        }
        if (o.json === true) print(io, { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, userName: creds.userName, caFile, endpoint })
        else {
          io.stdout(`Initialized Thingward in ${app.config.dataDir}\n\nFirst administrator: IAM user ${creds.userName} (role admin). Access key (shown once; store it now):\n  THINGWARD_ACCESS_KEY_ID=${creds.accessKeyId}\n  THINGWARD_SECRET_ACCESS_KEY=${creds.secretAccessKey}\n\nFor password sign-in: thingward iam users set-password ${creds.userName} --password-file /dev/stdin (TOTP is enrolled at the first thingward login).\nCA chain for clients: ${caFile}\nAPI endpoint: ${endpoint}\n`)
        }
      })
    })

  program.command('serve').description('run the platform (HTTPS API and MQTT gateway; initializes on first start)')
    .addOption(dataOpt()).option('--dev', 'development mode: generate the master key file if none is configured')
    .action(async (o: { data?: string, dev?: boolean }) => {
      const app = await createApp(configFor(io, o))
      try {
        const creds = await init(app)
        if (creds !== undefined) {
          io.stdout(`First start: created the CA and an admin access key (shown once; store it now):\n  THINGWARD_ACCESS_KEY_ID=${creds.accessKeyId}\n  THINGWARD_SECRET_ACCESS_KEY=${creds.secretAccessKey}\n`)
        }
        const http = await createHttpServer(app)
        const address = await http.listen({ host: app.config.http.host, port: app.config.http.port })
        const gateway = await createGatewayServer(app)
        const mqtt = await gateway.start({ host: app.config.mqtt.host, port: app.config.mqtt.port })
        // The devices' HTTPS data endpoint (mutual TLS: Publish and shadows with a client certificate), on the MQTT host.
        const devicePort = app.config.deviceHttps.port
        const device = devicePort === undefined ? undefined : await createDeviceHttpServer(app)
        const deviceAddress = device === undefined ? undefined : await device.listen({ host: app.config.mqtt.host, port: devicePort })
        const caFile = resolve(io.cwd, app.config.dataDir, 'ca.pem')
        io.stdout(`Thingward API listening on ${address} (region ${app.config.region})\nMQTT gateway (mutual TLS) listening on mqtts://${mqtt.host}:${mqtt.port}\n${deviceAddress === undefined ? '' : `Device HTTPS endpoint (mutual TLS) listening on ${deviceAddress}\n`}CA chain for clients: ${caFile}\n`)
        io.onShutdown(async () => { await device?.close(); await gateway.stop(); await http.close(); await app.close() })
      } catch (err) {
        await app.close()
        throw err
      }
    })

  const ca = program.command('ca').description('certificate authority')
  ca.command('export').description('print the CA chain (PEM) that clients must trust').addOption(dataOpt()).option('--root', 'print only the root CA')
    .action(async (o: { data?: string, root?: boolean }) => {
      await withApp(io, o, async (app) => { io.stdout(o.root === true ? await app.certificates.rootCaPem() : await app.certificates.caChainPem()) })
    })

  const things = program.command('things').description('things (devices)')
  apiOpts(things.command('create <name>')).option('--type <thingType>').option('--attr <k=v...>', 'attribute', [])
    .action(async (name: string, o: { type?: string, attr: string[] } & Record<string, string>) => {
      print(io, await clientFor(io, o).call('POST', `/things/${seg(name)}`, { body: { thingTypeName: o.type, attributePayload: { attributes: parseAttrs(o.attr) } } }))
    })
  apiOpts(things.command('describe <name>')).action(async (name: string, o: Record<string, string>) => { print(io, await clientFor(io, o).call('GET', `/things/${seg(name)}`)) })
  apiOpts(things.command('list')).option('--type <thingType>').option('--max <n>')
    .action(async (o: Record<string, string>) => { print(io, await clientFor(io, o).call('GET', '/things', { query: { thingTypeName: o.type, maxResults: o.max } })) })
  apiOpts(things.command('delete <name>')).action(async (name: string, o: Record<string, string>) => { await clientFor(io, o).call('DELETE', `/things/${seg(name)}`) })

  const certs = program.command('certificates').alias('certs').description('device certificates')
  apiOpts(certs.command('create')).option('--csr <file>', 'issue from this CSR instead of generating a key pair').option('--inactive')
    .action(async (o: { csr?: string, inactive?: boolean } & Record<string, string>) => {
      const c = clientFor(io, o)
      const setAsActive = o.inactive !== true
      if (o.csr !== undefined) print(io, await c.call('POST', '/certificates', { query: { setAsActive }, body: { certificateSigningRequest: readFileSync(o.csr, 'utf8') } }))
      else print(io, await c.call('POST', '/keys-and-certificate', { query: { setAsActive } }))
    })
  apiOpts(certs.command('describe <id>')).action(async (id: string, o: Record<string, string>) => { print(io, await clientFor(io, o).call('GET', `/certificates/${seg(id)}`)) })
  apiOpts(certs.command('list')).action(async (o: Record<string, string>) => { print(io, await clientFor(io, o).call('GET', '/certificates')) })
  for (const [cmd, status] of [['revoke', 'REVOKED'], ['deactivate', 'INACTIVE'], ['activate', 'ACTIVE']] as const) {
    apiOpts(certs.command(`${cmd} <id>`)).action(async (id: string, o: Record<string, string>) => {
      await clientFor(io, o).call('PUT', `/certificates/${seg(id)}`, { query: { newStatus: status } })
    })
  }
  apiOpts(certs.command('delete <id>')).option('--force').action(async (id: string, o: { force?: boolean } & Record<string, string>) => {
    await clientFor(io, o).call('DELETE', `/certificates/${seg(id)}`, { query: { forceDelete: o.force === true } })
  })

  const policies = program.command('policies').alias('policy').description('policies')
  apiOpts(policies.command('create <name> <file>')).action(async (name: string, file: string, o: Record<string, string>) => {
    print(io, await clientFor(io, o).call('POST', `/policies/${seg(name)}`, { body: { policyDocument: readFileSync(file, 'utf8') } }))
  })
  apiOpts(policies.command('get <name>')).action(async (name: string, o: Record<string, string>) => { print(io, await clientFor(io, o).call('GET', `/policies/${seg(name)}`)) })
  apiOpts(policies.command('list')).action(async (o: Record<string, string>) => { print(io, await clientFor(io, o).call('GET', '/policies')) })
  apiOpts(policies.command('delete <name>')).action(async (name: string, o: Record<string, string>) => { await clientFor(io, o).call('DELETE', `/policies/${seg(name)}`) })
  apiOpts(policies.command('attach <name> <targetArn>')).action(async (name: string, target: string, o: Record<string, string>) => {
    await clientFor(io, o).call('PUT', `/target-policies/${seg(name)}`, { body: { target } })
  })
  apiOpts(policies.command('detach <name> <targetArn>')).action(async (name: string, target: string, o: Record<string, string>) => {
    await clientFor(io, o).call('POST', `/target-policies/${seg(name)}`, { body: { target } })
  })

  apiOpts(policies.command('lint [name]')).option('--file <file>', 'lint a policy document not stored yet')
    .description('over-permission and trap findings for a policy (exit 1 when any is high or critical)')
    .action(async (name: string | undefined, o: { file?: string } & Record<string, string>) => {
      const c = clientFor(io, o)
      const r = o.file !== undefined
        ? await c.call<{ findings: Array<{ id: string, severity: string, path: string, message: string }> }>('POST', '/thingward/policy-lint', { body: { policyDocument: readFileSync(o.file, 'utf8') } })
        : await c.call<{ findings: Array<{ id: string, severity: string, path: string, message: string }> }>('GET', `/thingward/policies/${seg(name ?? '')}/lint`)
      for (const f of r.findings) io.stdout(`${f.severity.padEnd(8)} ${f.id} ${f.path}: ${f.message}\n`)
      if (r.findings.length === 0) io.stdout('no findings\n')
      if (r.findings.some(f => f.severity === 'high' || f.severity === 'critical')) io.setExitCode(1)
    })
  apiOpts(policies.command('test <principalArn>')).description('TestAuthorization: would this principal be allowed, and which statement decides')
    .requiredOption('--action <type>', 'PUBLISH, SUBSCRIBE, RECEIVE or CONNECT').requiredOption('--resource <arn...>', 'resource ARNs')
    .option('--client-id <id>')
    .action(async (principal: string, o: { action: string, resource: string[], clientId?: string } & Record<string, string>) => {
      print(io, await clientFor(io, o).call('POST', '/test-authorization', { query: { clientId: o.clientId }, body: { principal, authInfos: [{ actionType: o.action.toUpperCase(), resources: o.resource }] } }))
    })

  apiOpts(program.command('blast-radius')).description('what share of the fleet each identity could reach, ranked').option('--top <n>', 'principals to list', '20').option('--json')
    .action(async (o: { top: string, json?: boolean } & Record<string, string>) => {
      const r = await clientFor(io, o).call<{ lines: string[] }>('GET', '/thingward/blast-radius', { query: { top: o.top } })
      if (o.json === true) print(io, r)
      else io.stdout(`${r.lines.join('\n')}\n`)
    })

  const groups = program.command('groups').description('thing groups')
  apiOpts(groups.command('create <name>')).option('--parent <group>').action(async (name: string, o: { parent?: string } & Record<string, string>) => {
    print(io, await clientFor(io, o).call('POST', `/thing-groups/${seg(name)}`, { body: { parentGroupName: o.parent } }))
  })
  apiOpts(groups.command('list')).action(async (o: Record<string, string>) => { print(io, await clientFor(io, o).call('GET', '/thing-groups')) })
  apiOpts(groups.command('add-thing <group> <thing>')).action(async (group: string, thing: string, o: Record<string, string>) => {
    await clientFor(io, o).call('PUT', '/thing-groups/addThingToThingGroup', { body: { thingGroupName: group, thingName: thing } })
  })
  apiOpts(groups.command('remove-thing <group> <thing>')).action(async (group: string, thing: string, o: Record<string, string>) => {
    await clientFor(io, o).call('PUT', '/thing-groups/removeThingFromThingGroup', { body: { thingGroupName: group, thingName: thing } })
  })

  apiOpts(program.command('provision')).description('provision a fleet: one thing, key pair, certificate and role policy per device')
    .requiredOption('--count <n>', 'number of devices').requiredOption('--role <role>', `role template (${ROLES.join(', ')})`)
    .requiredOption('--out <dir>', 'directory for device bundles (cert.pem, key.pem, ca.pem; mode 0600)')
    .option('--prefix <prefix>', 'thing name prefix (default: the role)').option('--start <n>', 'first index', '0')
    .option('--building <b>', 'building attribute', '1').option('--floor <f>', 'floor attribute', '1')
    .option('--batch <n>', 'devices per request', '500')
    .action(async (o: { count: string, role: string, out: string, prefix?: string, start: string, building: string, floor: string, batch: string } & Record<string, string>) => {
      await provision(io, clientFor(io, o), o)
    })

  registerAuditCommands(program, { io, configFor: (o) => configFor(io, o), clientFor: (o) => clientFor(io, o), apiOpts })
  registerSchemaCommands(program, { io, clientFor: (o) => clientFor(io, o), apiOpts })
  registerIamCommands(program, { io, clientFor: (o) => clientFor(io, o), anonymousClientFor: (o) => clientFor(io, o, true), apiOpts })
  return program
}

function parseAttrs (list: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of list) {
    const i = kv.indexOf('=')
    if (i <= 0) throw new AppError('ERR_REGISTRY_INVALID_REQUEST', 'attributes must be given as key=value')
    out[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return out
}

interface ProvisionOptions { count: string, role: string, out: string, prefix?: string, start: string, building: string, floor: string, batch: string }

/**
 * Bulk provisioning. Keys are generated here, so private keys never cross the network; the server signs CSRs
 * and commits each batch in one transaction. A bundle is written only after its batch committed, cert.pem last:
 * a bundle with a cert.pem is a device that exists, and a rerun skips it.
 *
 * Crash safety: before a batch is sent, its names and keys go to a journal file (0600) in OUT/.journal. If the
 * server dies after committing but before answering, the rerun finds the journal, reads each device's
 * certificate back from the registry, checks that its public key is the journaled key, and writes the bundle.
 */
async function provision (io: CliIo, client: ApiClient, o: ProvisionOptions): Promise<void> {
  const count = Number(o.count)
  const start = Number(o.start)
  const batchSize = Number(o.batch)
  if (!Number.isInteger(count) || count < 1 || count > 10_000_000) throw new AppError('ERR_REGISTRY_INVALID_REQUEST', '--count must be an integer from 1 to 10000000')
  if (!Number.isInteger(start) || start < 0) throw new AppError('ERR_REGISTRY_INVALID_REQUEST', '--start must be a non-negative integer')
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000) throw new AppError('ERR_REGISTRY_INVALID_REQUEST', '--batch must be an integer from 1 to 1000')
  if (!(ROLES as readonly string[]).includes(o.role)) throw new AppError('ERR_REGISTRY_INVALID_REQUEST', `unknown role: use one of ${ROLES.join(', ')}`)
  const role = o.role as RoleName
  const template = { policyDocument: ROLE_TEMPLATES[role], thingTypeName: ROLE_INFO[role].thingType }
  const policyName = `thingward-role-${role}`
  try { await client.call('POST', `/policies/${seg(policyName)}`, { body: { policyDocument: template.policyDocument } }) } catch (err) {
    if (!(err instanceof ApiError && err.type === 'ResourceAlreadyExistsException')) throw err
  }
  await client.call('POST', `/thing-types/${seg(template.thingTypeName)}`, { body: {} })
  const caPem = (await client.call<{ caChainPem: string }>('GET', '/thingward/ca')).caChainPem
  const journalDir = join(o.out, '.journal')
  mkdirSync(journalDir, { recursive: true, mode: 0o700 })
  const writeBundle = (thingName: string, keyPem: string, certPem: string): void => {
    const dir = join(o.out, thingName)
    writeFileAtomic(join(dir, 'key.pem'), keyPem)
    writeFileAtomic(join(dir, 'ca.pem'), caPem)
    writeFileAtomic(join(dir, 'cert.pem'), certPem)
  }
  const recovered = await recoverJournal(client, journalDir, (n) => existsSync(join(o.out, n, 'cert.pem')), writeBundle)
  if (recovered > 0) io.stderr(`recovered ${recovered} devices committed before an interruption\n`)

  const prefix = o.prefix ?? ROLE_INFO[role].prefix
  const width = String(start + count - 1).length
  const names: string[] = []
  for (let i = start; i < start + count; i++) {
    const name = `${prefix}-${String(i).padStart(width, '0')}`
    if (!existsSync(join(o.out, name, 'cert.pem'))) names.push(name)
  }
  const bar = new cliProgress.SingleBar({ format: 'provisioning [{bar}] {value}/{total} devices | {rate}/s | eta {eta}s', stream: io.progressStream, noTTYOutput: !io.isTty, notTTYSchedule: 2000 }, cliProgress.Presets.shades_classic)
  bar.start(count, count - names.length, { rate: 0 })
  const began = Date.now()
  let done = count - names.length
  const makeBatch = (slice: string[]): { keys: Map<string, string>, items: Array<{ thingName: string, csr: string, attributes: Record<string, string> }> } => {
    const keys = new Map<string, string>()
    const items = slice.map((thingName) => {
      const kp = generateKeyPair('EC-P256')
      keys.set(thingName, kp.privateKeyPem)
      return { thingName, csr: createCsr({ privateKey: kp.privateKey, publicKey: kp.publicKey, commonName: thingName }), attributes: { building: o.building, floor: o.floor } }
    })
    return { keys, items }
  }
  const send = async (b: ReturnType<typeof makeBatch>): Promise<void> => {
    const journal = join(journalDir, `${b.items[0].thingName}.json`)
    writeFileAtomic(journal, JSON.stringify([...b.keys].map(([thingName, keyPem]) => ({ thingName, keyPem }))))
    const res = await client.call<{ devices: Array<{ thingName: string, certificatePem: string, certificateId: string }> }>('POST', '/thingward/provision', {
      body: { policyName, thingTypeName: template.thingTypeName, items: b.items },
    })
    for (const d of res.devices) writeBundle(d.thingName, b.keys.get(d.thingName) as string, d.certificatePem)
    unlinkSync(journal)
    done += res.devices.length
    bar.update(done, { rate: Math.round((done - (count - names.length)) / Math.max(0.001, (Date.now() - began) / 1000)) })
  }
  // Two requests in flight: the server signs and commits one batch while the next is prepared and sent.
  const inflight: Array<Promise<void>> = []
  try {
    for (let i = 0; i < names.length; i += batchSize) {
      inflight.push(send(makeBatch(names.slice(i, i + batchSize))))
      if (inflight.length >= 2) await inflight.shift()
    }
    await Promise.all(inflight)
  } finally { bar.stop() }
  io.stderr(`provisioned ${names.length} devices (${count - names.length} already present) in ${((Date.now() - began) / 1000).toFixed(1)} s\n`)
}

/** Writes bundles for journaled devices the registry holds with the journaled key; returns how many. */
async function recoverJournal (client: ApiClient, journalDir: string, hasBundle: (n: string) => boolean, writeBundle: (n: string, key: string, cert: string) => void): Promise<number> {
  let recovered = 0
  for (const file of readdirSync(journalDir).filter(f => f.endsWith('.json'))) {
    const entries = JSON.parse(readFileSync(join(journalDir, file), 'utf8')) as Array<{ thingName: string, keyPem: string }>
    for (const { thingName, keyPem } of entries) {
      if (hasBundle(thingName)) continue
      let principals: string[] = []
      try { principals = (await client.call<{ principals?: string[] }>('GET', `/things/${seg(thingName)}/principals`)).principals ?? [] } catch (err) {
        if (err instanceof ApiError && err.type === 'ResourceNotFoundException') continue
        throw err
      }
      const want = createPublicKey(keyPem).export({ type: 'spki', format: 'der' })
      for (const arn of principals) {
        const id = arn.slice(arn.lastIndexOf('/') + 1)
        const pem = (await client.call<{ certificateDescription: { certificatePem: string } }>('GET', `/certificates/${seg(id)}`)).certificateDescription.certificatePem
        if (new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }).equals(want)) {
          writeBundle(thingName, keyPem, pem)
          recovered++
          break
        }
      }
    }
    unlinkSync(join(journalDir, file))
  }
  return recovered
}
