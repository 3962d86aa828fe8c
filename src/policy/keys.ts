/**
 * Vocabulary shared by the parser, both evaluators and the analyzers: IoT actions, known condition keys, and the
 * value parsers for typed condition operators. Pure functions, no state.
 */

/** AWS IoT data-plane actions and the resource type each is checked against (IoT DG `iot-policy-actions`). */
export const IOT_ACTIONS = {
  Connect: 'iot:Connect',
  Publish: 'iot:Publish',
  Subscribe: 'iot:Subscribe',
  Receive: 'iot:Receive',
  RetainPublish: 'iot:RetainPublish',
  GetRetainedMessage: 'iot:GetRetainedMessage',
  ListRetainedMessages: 'iot:ListRetainedMessages',
  DeleteConnection: 'iot:DeleteConnection',
  GetThingShadow: 'iot:GetThingShadow',
  UpdateThingShadow: 'iot:UpdateThingShadow',
  DeleteThingShadow: 'iot:DeleteThingShadow',
  ListNamedShadowsForThing: 'iot:ListNamedShadowsForThing',
  DescribeJobExecution: 'iot:DescribeJobExecution',
  GetPendingJobExecutions: 'iot:GetPendingJobExecutions',
  UpdateJobExecution: 'iot:UpdateJobExecution',
  StartNextPendingJobExecution: 'iot:StartNextPendingJobExecution',
  AssumeRoleWithCertificate: 'iot:AssumeRoleWithCertificate',
} as const
export type IotAction = (typeof IOT_ACTIONS)[keyof typeof IOT_ACTIONS]

/** IoT DG `iot-policy-actions`: the resource type (`arn:…:<type>/…`) each data-plane action is checked against. */
export const IOT_ACTION_RESOURCE_TYPE: Readonly<Record<string, 'client' | 'topic' | 'topicfilter' | 'thing' | 'rolealias' | '*'>> = {
  'iot:connect': 'client',
  'iot:deleteconnection': 'client',
  'iot:publish': 'topic',
  'iot:receive': 'topic',
  'iot:retainpublish': 'topic',
  'iot:getretainedmessage': 'topic',
  'iot:subscribe': 'topicfilter',
  'iot:listretainedmessages': '*',
  'iot:getthingshadow': 'thing',
  'iot:updatethingshadow': 'thing',
  'iot:deletethingshadow': 'thing',
  'iot:listnamedshadowsforthing': '*',
  'iot:describejobexecution': 'thing',
  'iot:getpendingjobexecutions': 'thing',
  'iot:updatejobexecution': 'thing',
  'iot:startnextpendingjobexecution': 'thing',
  'iot:assumerolewithcertificate': 'rolealias',
}

/** ASCII-only lower-casing. Action names are ASCII (IAM UG `reference_policies_elements_action`: case-insensitive),
 * and folding only A–Z keeps Unicode lookalikes (`İ`, `K` Kelvin sign) from ever equalling an ASCII name. */
export function asciiLower (s: string): string {
  let i = 0
  const n = s.length
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 65 && c <= 90) break
  }
  if (i === n) return s
  let out = s.slice(0, i)
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i]
  }
  return out
}

/**
 * Condition keys we know, in canonical spelling (IAM UG `reference_policies_condition-keys`; IoT DG
 * `iot-policy-variables`, `thing-policy-variables`, `cert-policy-variables`). Matching is case-insensitive.
 */
export const KNOWN_KEYS = [
  'aws:CurrentTime', 'aws:EpochTime', 'aws:SourceIp', 'aws:SecureTransport', 'aws:MultiFactorAuthPresent',
  'aws:MultiFactorAuthAge', 'aws:username', 'aws:userid', 'aws:PrincipalArn', 'aws:PrincipalAccount',
  'aws:PrincipalType', 'aws:RequestedRegion', 'aws:TokenIssueTime',
  'iot:ClientId', 'iot:DomainName', 'iot:Connection.Thing.ThingName', 'iot:Connection.Thing.ThingTypeName',
  'iot:Connection.Thing.IsAttached', 'iot:ConnectAttributes', 'iot:LastWillTopic',
  'iot:Certificate.SerialNumber', 'iot:Certificate.AvailableKeys',
] as const

/** Keys that have a family of names: tags, thing attributes, certificate fields. */
const KNOWN_KEY_PATTERNS: readonly RegExp[] = [
  /^aws:principaltag\/.+$/,
  /^iot:connection\.thing\.attributes\[[^\]]+\]$/,
  /^iot:certificate\.(subject|issuer)\.(commonname|organization|organizationalunit|country|state|serialnumber|title|surname|givenname|initials|pseudonym|generationqualifier|distinguishednamequalifier)(\.list|\.\d)?$/,
  /^iot:certificate\.(subject|issuer)\.alternativename\.(rfc822name|dnsname|directoryname|uniformresourceidentifier|ipaddress)(\.list|\.\d)?$/,
]

const KNOWN_LOWER = new Map<string, string>(KNOWN_KEYS.map(k => [k.toLowerCase(), k]))

/** Canonical spelling of a key for exact-property lookup in a context object; the key itself when unknown. */
export function canonicalKey (keyName: string): string {
  return KNOWN_LOWER.get(keyName.toLowerCase()) ?? keyName
}

/** True for a key we recognise (lower-cased input). */
export function isKnownKey (lowerKey: string): boolean {
  if (KNOWN_LOWER.has(lowerKey)) return true
  for (const re of KNOWN_KEY_PATTERNS) if (re.test(lowerKey)) return true
  return false
}

/**
 * Keys fixed for the lifetime of an MQTT connection (IoT DG `iot-policy-variables`: client id, thing and
 * certificate variables). A compiled authorizer binds them once; a request cannot supply or override them, and
 * absent ones stay absent. Every other key is looked up per request unless the session supplied it.
 */
export function isSessionScopedKey (lowerKey: string): boolean {
  return lowerKey === 'iot:clientid' || lowerKey === 'iot:domainname' ||
    lowerKey.startsWith('iot:connection.') || lowerKey.startsWith('iot:certificate.')
}

/**
 * Thingward hardening (deviation from AWS, stricter): a variable value substituted into an Allow Resource entry is
 * refused when it could change what the pattern addresses. AWS already refuses certificate values containing
 * `* $ + ? #` (IoT DG `cert-policy-variables`); we apply that to every variable and add `/` (a topic-level or
 * shadow-name separator: client id `a/b` must not land inside device `a`'s namespace), control characters and the
 * empty string. AWS's own pitfall — client id `+` in `topicfilter/my/${iot:ClientId}/topic` (IoT DG
 * `basic-policy-variables`) — is closed by this rule.
 */
export function isHostileValue (v: string): boolean {
  if (v.length === 0) return true
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    // / + # * ? $
    if (c === 47 || c === 43 || c === 35 || c === 42 || c === 63 || c === 36 || c < 32 || c === 127) return true
  }
  return false
}

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/

/** IAM numeric condition values: integers or decimals as JSON numbers or strings. NaN when not numeric. */
export function parseNumber (v: string | number | boolean): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : Number.NaN
  if (typeof v === 'boolean') return Number.NaN
  return NUMBER_RE.test(v) ? Number(v) : Number.NaN
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/
const EPOCH_RE = /^\d{1,15}$/

/**
 * IAM date condition values (operators page: "ISO 8601 date format" or epoch seconds) to epoch milliseconds;
 * NaN when not a date. A date-time without an offset is UTC, as in AWS examples (`2019-07-16T12:00:00Z`).
 */
export function parseDateMs (v: string | number | boolean): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : Number.NaN
  if (typeof v === 'boolean') return Number.NaN
  if (EPOCH_RE.test(v)) return Number(v) * 1000
  const m = ISO_RE.exec(v)
  if (m === null) return Number.NaN
  const [, y, mo, d, h, mi, s, frac, zone] = m
  const month = Number(mo)
  const day = Number(d)
  if (month < 1 || month > 12 || day < 1 || day > 31) return Number.NaN
  const hour = h === undefined ? 0 : Number(h)
  const minute = mi === undefined ? 0 : Number(mi)
  const second = s === undefined ? 0 : Number(s)
  if (hour > 23 || minute > 59 || second > 60) return Number.NaN
  const ms = frac === undefined ? 0 : Math.floor(Number(`0${frac}`) * 1000)
  let t = Date.UTC(Number(y), month - 1, day, hour, minute, second, ms)
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    const offMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))
    t -= sign * offMin * 60_000
  }
  return t
}

/** IAM `Bool`: "true" or "false" (case-insensitive), or a JSON boolean. Undefined otherwise. */
export function parseBool (v: string | number | boolean): boolean | undefined {
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return undefined
  const l = asciiLower(v)
  return l === 'true' ? true : l === 'false' ? false : undefined
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** IAM `BinaryEquals` compares bytes; we compare the decoded byte strings. Undefined when not strict base64. */
export function decodeBase64 (v: string | number | boolean): string | undefined {
  if (typeof v !== 'string' || !BASE64_RE.test(v)) return undefined
  return atob(v)
}

/** A parsed IP address or CIDR block. IPv4 is one 32-bit word; IPv6 is eight 16-bit groups. */
export interface IpBlock {
  readonly v6: boolean
  readonly words: readonly number[]
  readonly prefix: number
}

function parseIpv4 (s: string): number[] | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  let w = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    w = w * 256 + n
  }
  return [w]
}

function parseIpv6 (s: string): number[] | undefined {
  let tailV4: number[] | undefined
  let str = s
  const lastColon = str.lastIndexOf(':')
  if (str.includes('.', lastColon)) {
    tailV4 = parseIpv4(str.slice(lastColon + 1))
    if (tailV4 === undefined) return undefined
    str = `${str.slice(0, lastColon + 1)}0:0`
  }
  const dbl = str.indexOf('::')
  if (dbl !== str.lastIndexOf('::')) return undefined
  const parseGroups = (x: string): number[] | undefined => {
    if (x === '') return []
    const out: number[] = []
    for (const g of x.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(parseInt(g, 16))
    }
    return out
  }
  let groups: number[] | undefined
  if (dbl >= 0) {
    const a = parseGroups(str.slice(0, dbl))
    const b = parseGroups(str.slice(dbl + 2))
    if (a === undefined || b === undefined || a.length + b.length > 7) return undefined
    groups = [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b]
  } else {
    groups = parseGroups(str)
    if (groups === undefined || groups.length !== 8) return undefined
  }
  if (tailV4 !== undefined) {
    groups[6] = Math.floor(tailV4[0] / 65536)
    groups[7] = tailV4[0] % 65536
  }
  return groups
}

/** IAM `IpAddress`: an IPv4 or IPv6 address with optional `/prefix`; a bare address is /32 or /128. */
export function parseIpBlock (v: string | number | boolean): IpBlock | undefined {
  if (typeof v !== 'string') return undefined
  const slash = v.indexOf('/')
  const addr = slash < 0 ? v : v.slice(0, slash)
  const v6 = addr.includes(':')
  const words = v6 ? parseIpv6(addr) : parseIpv4(addr)
  if (words === undefined) return undefined
  const max = v6 ? 128 : 32
  let prefix = max
  if (slash >= 0) {
    const p = v.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p)) return undefined
    prefix = Number(p)
    if (prefix > max) return undefined
  }
  return { v6, words, prefix }
}

/** True when `addr` (a parsed address) lies inside `block`. IPv4 never matches an IPv6 block and vice versa. */
export function ipInBlock (addr: IpBlock, block: IpBlock): boolean {
  if (addr.v6 !== block.v6) return false
  const width = block.v6 ? 16 : 32
  let remaining = block.prefix
  for (let i = 0; i < block.words.length && remaining > 0; i++) {
    const take = Math.min(width, remaining)
    const shift = width - take
    if (Math.floor(addr.words[i] / 2 ** shift) !== Math.floor(block.words[i] / 2 ** shift)) return false
    remaining -= take
  }
  return true
}

/**
 * Case folding for `StringEqualsIgnoreCase` (IAM UG condition operators: "case-insensitive matching"). Unicode
 * lower-casing, except that a non-ASCII character never folds onto ASCII: the Kelvin sign `K` (U+212A) does not
 * equal `k`, and `İ` does not become `i̇`. Thingward hardening so a lookalike can never equal an ASCII name.
 */
export function foldCase (s: string): string {
  let ascii = true
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) { ascii = false; break }
  if (ascii) return s.toLowerCase()
  let out = ''
  for (const ch of s) {
    const l = ch.toLowerCase()
    out += ch.charCodeAt(0) <= 127 || l.charCodeAt(0) > 127 ? l : ch
  }
  return out
}

/** Converts a scalar context value to the string IAM compares (`true`/`false` for booleans). */
export function scalarToString (v: string | number | boolean): string {
  return typeof v === 'string' ? v : String(v)
}
