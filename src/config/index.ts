import { AppError, deepFreeze, GATEWAY_LIMIT_RANGES, isRecord, OVERFLOW_LIMITS, resolveGatewayLimits } from '../core/index.ts'
import type { GatewayLimits, OverflowPolicy } from '../core/index.ts'

export interface Config {
  readonly dataDir: string
  /** Dev mode allows generating a key-encryption key on first start (with a loud warning). */
  readonly devMode: boolean
  readonly region: string
  readonly accountId: string
  readonly http: { readonly host: string, readonly port: number, readonly tls: boolean, readonly bodyLimitBytes: number }
  readonly mqtt: { readonly host: string, readonly port: number, readonly limits: MqttLimits }
  /** The devices' HTTPS data endpoint (mutual TLS, on the MQTT host); off unless a port is set. */
  readonly deviceHttps: { readonly port: number | undefined }
  /** A user-supplied server certificate chain and key (PEM files) instead of one from our CA. */
  readonly tls: { readonly minVersion: 'TLSv1.2' | 'TLSv1.3', readonly certFile: string | undefined, readonly keyFile: string | undefined }
  /** Extra host names and addresses for the server certificate's SANs. */
  readonly publicHostnames: readonly string[]
  readonly pki: { readonly caAlgorithm: 'EC-P256' | 'EC-P384' | 'RSA-3072', readonly deviceValidityDays: number, readonly organization: string }
  readonly storage: { readonly driver: 'sqlite', readonly path: string, readonly synchronous: 'FULL' | 'NORMAL' }
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Value of THINGWARD_MASTER_KEY, if set. Never logged. */
  readonly masterKey: string | undefined
}

/**
 * Gateway limits an operator sets (`mqtt.limits` in the config file, or `THINGWARD_MQTT_LIMITS` as a JSON object,
 * whose keys win); every limit not given keeps AWS IoT Core's default. Names, defaults and ranges are core's
 * (core/gateway-limits.ts), so the gateway takes this object as is.
 */
export type MqttLimits = Partial<GatewayLimits>

function mqttLimits (p: Problems, env: string | undefined, fileValue: unknown): MqttLimits {
  const name = 'THINGWARD_MQTT_LIMITS / mqtt.limits'
  const sources: unknown[] = []
  if (fileValue !== undefined) sources.push(fileValue)
  if (env !== undefined) {
    try { sources.push(JSON.parse(env)) } catch { p.add('THINGWARD_MQTT_LIMITS', 'must be a JSON object'); return {} }
  }
  const out: Record<string, number | OverflowPolicy> = {}
  for (const src of sources) {
    if (!isRecord(src)) { p.add(name, 'must be an object of limit names and values'); continue }
    for (const [key, v] of Object.entries(src)) {
      const setting = `${name}.${key}`
      if ((OVERFLOW_LIMITS as readonly string[]).includes(key)) {
        if (v === 'drop' || v === 'disconnect') out[key] = v
        else p.add(setting, 'must be drop or disconnect')
        continue
      }
      const range = Object.hasOwn(GATEWAY_LIMIT_RANGES, key) ? GATEWAY_LIMIT_RANGES[key as keyof typeof GATEWAY_LIMIT_RANGES] : undefined
      if (range === undefined) { p.add(setting, `is not a gateway limit (known: ${[...Object.keys(GATEWAY_LIMIT_RANGES), ...OVERFLOW_LIMITS].join(', ')})`); continue }
      if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) { p.add(setting, `must be an integer from ${range[0]} to ${range[1]}`); continue }
      out[key] = v
    }
  }
  const overrides = out as MqttLimits
  // Checked against each other with the defaults filled in, as the gateway will run them.
  const resolved = resolveGatewayLimits(overrides)
  for (const x of resolved.problems) p.add(`${name}.${x.limit}`, x.rule)
  // A payload limit given alone carries the packet limit it implies, so the configuration shows what will run.
  if (overrides.maxPayloadBytes !== undefined) out.maxPacketBytes = resolved.limits.maxPacketBytes
  return out as MqttLimits
}

/** Collects every problem so the user sees them all at once, each naming the setting. */
class Problems {
  readonly list: string[] = []
  add (setting: string, rule: string): void { this.list.push(`${setting}: ${rule}`) }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
const isLoopback = (host: string): boolean => LOOPBACK.has(host) || host.startsWith('127.')

function port (p: Problems, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt
  const n = typeof v === 'number' ? v : (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN)
  if (!Number.isInteger(n) || n < 0 || n > 65535) { p.add(name, 'must be a port number from 0 to 65535'); return dflt }
  return n
}

function bool (p: Problems, name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt
  if (v === true || v === 'true' || v === '1') return true
  if (v === false || v === 'false' || v === '0') return false
  p.add(name, 'must be true or false'); return dflt
}

function oneOf<T extends string> (p: Problems, name: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T
  p.add(name, `must be one of ${allowed.join(', ')}`); return dflt
}

function text (p: Problems, name: string, v: unknown, dflt: string, re?: RegExp, rule?: string): string {
  if (v === undefined) return dflt
  if (typeof v !== 'string' || v === '' || (re !== undefined && !re.test(v))) { p.add(name, rule ?? 'must be a non-empty string'); return dflt }
  return v
}

const get = (obj: Record<string, unknown>, path: string): unknown =>
  path.split('.').reduce<unknown>((o, k) => isRecord(o) ? o[k] : undefined, obj)

/**
 * Builds the frozen configuration from `THINGWARD_*` variables over an optional parsed config file. Every bad
 * value is named in one ERR_CONFIG_INVALID error; insecure settings are refused (a plaintext API off loopback,
 * TLS below 1.2). Called only from main.ts and the CLI entry.
 */
export function loadConfig (env: Readonly<Record<string, string | undefined>>, file: unknown = {}, overrides: { dataDir?: string, devMode?: boolean } = {}): Config {
  const p = new Problems()
  if (!isRecord(file)) throw new AppError('ERR_CONFIG_INVALID', 'invalid configuration: the config file must hold a JSON object')
  const pick = (envName: string, filePath: string): unknown => env[envName] ?? get(file, filePath)

  const dataDir = overrides.dataDir ?? text(p, 'THINGWARD_DATA_DIR / dataDir', pick('THINGWARD_DATA_DIR', 'dataDir'), './data')
  const devMode = overrides.devMode ?? bool(p, 'THINGWARD_DEV / devMode', pick('THINGWARD_DEV', 'devMode'), false)
  const region = text(p, 'THINGWARD_REGION / region', pick('THINGWARD_REGION', 'region'), 'local-1', /^[a-z0-9-]{1,32}$/, 'must be 1-32 characters of [a-z0-9-]')
  const accountId = text(p, 'THINGWARD_ACCOUNT_ID / accountId', pick('THINGWARD_ACCOUNT_ID', 'accountId'), '000000000000', /^\d{12}$/, 'must be 12 digits')
  const httpHost = text(p, 'THINGWARD_HTTP_HOST / http.host', pick('THINGWARD_HTTP_HOST', 'http.host'), '127.0.0.1')
  const httpPort = port(p, 'THINGWARD_HTTP_PORT / http.port', pick('THINGWARD_HTTP_PORT', 'http.port'), 8443)
  const httpTls = bool(p, 'THINGWARD_HTTP_TLS / http.tls', pick('THINGWARD_HTTP_TLS', 'http.tls'), true)
  if (!httpTls && !isLoopback(httpHost)) p.add('THINGWARD_HTTP_TLS / http.tls', 'a plaintext API is allowed only on a loopback address (127.0.0.1, ::1, localhost)')
  const bodyLimit = Number(pick('THINGWARD_HTTP_BODY_LIMIT_BYTES', 'http.bodyLimitBytes') ?? 1_048_576)
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024 || bodyLimit > 64 * 1_048_576) p.add('THINGWARD_HTTP_BODY_LIMIT_BYTES / http.bodyLimitBytes', 'must be an integer from 1024 to 67108864')
  const mqttHost = text(p, 'THINGWARD_MQTT_HOST / mqtt.host', pick('THINGWARD_MQTT_HOST', 'mqtt.host'), '127.0.0.1')
  const mqttPort = port(p, 'THINGWARD_MQTT_PORT / mqtt.port', pick('THINGWARD_MQTT_PORT', 'mqtt.port'), 8883)
  const mqttLimitSet = mqttLimits(p, env.THINGWARD_MQTT_LIMITS, get(file, 'mqtt.limits'))
  const devicePortRaw = pick('THINGWARD_DEVICE_HTTPS_PORT', 'deviceHttps.port')
  const devicePort = devicePortRaw === undefined ? undefined : port(p, 'THINGWARD_DEVICE_HTTPS_PORT / deviceHttps.port', devicePortRaw, 0)
  const minVersionRaw = pick('THINGWARD_TLS_MIN_VERSION', 'tls.minVersion')
  if (minVersionRaw !== undefined && minVersionRaw !== 'TLSv1.2' && minVersionRaw !== 'TLSv1.3') {
    p.add('THINGWARD_TLS_MIN_VERSION / tls.minVersion', 'must be TLSv1.2 or TLSv1.3: older protocol versions are refused')
  }
  const minVersion = minVersionRaw === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2'
  const certFileRaw = pick('THINGWARD_TLS_CERT_FILE', 'tls.certFile')
  const keyFileRaw = pick('THINGWARD_TLS_KEY_FILE', 'tls.keyFile')
  const certFile = certFileRaw === undefined ? undefined : text(p, 'THINGWARD_TLS_CERT_FILE / tls.certFile', certFileRaw, '')
  const keyFile = keyFileRaw === undefined ? undefined : text(p, 'THINGWARD_TLS_KEY_FILE / tls.keyFile', keyFileRaw, '')
  if ((certFile === undefined) !== (keyFile === undefined)) p.add('THINGWARD_TLS_CERT_FILE / THINGWARD_TLS_KEY_FILE', 'a user-supplied server certificate needs both the certificate and the key file')
  const hostnamesRaw = pick('THINGWARD_HOSTNAMES', 'publicHostnames')
  let publicHostnames: string[] = []
  if (typeof hostnamesRaw === 'string') publicHostnames = hostnamesRaw.split(',').map(s => s.trim()).filter(s => s !== '')
  else if (Array.isArray(hostnamesRaw) && hostnamesRaw.every(h => typeof h === 'string')) publicHostnames = hostnamesRaw as string[]
  else if (hostnamesRaw !== undefined) p.add('THINGWARD_HOSTNAMES / publicHostnames', 'must be a comma-separated list or an array of host names')
  for (const h of publicHostnames) if (!/^[a-zA-Z0-9.:-]{1,253}$/.test(h)) p.add('THINGWARD_HOSTNAMES / publicHostnames', 'host names may contain only letters, digits, dots, colons and hyphens')
  const caAlgorithm = oneOf(p, 'THINGWARD_CA_ALGORITHM / pki.caAlgorithm', pick('THINGWARD_CA_ALGORITHM', 'pki.caAlgorithm'), ['EC-P256', 'EC-P384', 'RSA-3072'] as const, 'EC-P256')
  const validityRaw = pick('THINGWARD_DEVICE_VALIDITY_DAYS', 'pki.deviceValidityDays') ?? 365
  const deviceValidityDays = Number(validityRaw)
  if (!Number.isInteger(deviceValidityDays) || deviceValidityDays < 1 || deviceValidityDays > 3650) p.add('THINGWARD_DEVICE_VALIDITY_DAYS / pki.deviceValidityDays', 'must be an integer from 1 to 3650')
  const organization = text(p, 'pki.organization', get(file, 'pki.organization'), 'Thingward', /^[^,=+<>#;"\\]{1,64}$/, 'must be 1-64 characters without , = + < > # ; " \\')
  const synchronous = oneOf(p, 'THINGWARD_SQLITE_SYNCHRONOUS / storage.synchronous', pick('THINGWARD_SQLITE_SYNCHRONOUS', 'storage.synchronous'), ['FULL', 'NORMAL'] as const, 'FULL')
  const logLevel = oneOf(p, 'THINGWARD_LOG_LEVEL / logLevel', pick('THINGWARD_LOG_LEVEL', 'logLevel'), ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info')
  if (get(file, 'masterKey') !== undefined) p.add('masterKey', 'the master key must not be written in the config file: use THINGWARD_MASTER_KEY or the key file')

  if (p.list.length > 0) {
    throw new AppError('ERR_CONFIG_INVALID', `invalid configuration:\n  - ${p.list.join('\n  - ')}`, { problems: p.list.length })
  }
  return deepFreeze({
    dataDir,
    devMode,
    region,
    accountId,
    http: { host: httpHost, port: httpPort, tls: httpTls, bodyLimitBytes: bodyLimit },
    mqtt: { host: mqttHost, port: mqttPort, limits: mqttLimitSet },
    deviceHttps: { port: devicePort },
    tls: { minVersion, certFile, keyFile },
    publicHostnames,
    pki: { caAlgorithm, deviceValidityDays, organization },
    storage: { driver: 'sqlite' as const, path: `${dataDir}/thingward.db`, synchronous },
    logLevel,
    masterKey: env.THINGWARD_MASTER_KEY,
  })
}

/**
 * Environment the server process runs with (`thingward serve` re-executes itself with it when unset; the
 * benchmarks start the gateway with it too). glibc reads these variables once, at process start.
 *
 * `MALLOC_MMAP_THRESHOLD_`: every TLS connection in Node holds a 64 KiB read buffer for its whole life, mostly
 * unused by an idle device. At 64 KiB and above, glibc maps allocations on their own pages, so only the pages a
 * connection actually touched are resident — measured 100 → 65–74 KB per idle connection with 10,000 devices
 * connected. Setting a fixed threshold also stops glibc's dynamic threshold from growing into the heap, where
 * freed buffers of closed connections stay resident. An operator who sets the variable keeps their value.
 */
export const SERVER_PROCESS_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_MMAP_THRESHOLD_: '65536' })
