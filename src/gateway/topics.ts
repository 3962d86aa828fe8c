import { filterSyntaxProblem } from '../core/index.ts'

/**
 * Topic name and topic filter rules (MQTT 3.1.1 §4.7, MQTT 5 §4.7 and §4.8.2), plus the gateway's own size
 * limits (AWS IoT: 256 bytes, 7 slashes). Pure functions, table-tested in topics.test.ts.
 */

/** Why a topic or filter was refused. `syntax` is a protocol violation; `limit` is a policy limit. */
export type TopicProblem = 'empty' | 'wildcard' | 'syntax' | 'null-char' | 'too-long' | 'too-deep' | 'share-invalid'

/** Limits applied to topics and filters that are not reserved (`$aws/…`). */
export interface TopicLimits {
  /** Maximum UTF-8 length of a topic or filter, in bytes. AWS: 256. */
  readonly maxTopicBytes: number
  /** Maximum number of `/` separators. AWS: 7 (8 levels). */
  readonly maxTopicSlashes: number
  /** Maximum UTF-8 length of reserved (`$aws/…`) topics, which are exempt from the depth limit. */
  readonly maxReservedTopicBytes: number
  /** Topics starting with this prefix are reserved (exempt from the depth limit). */
  readonly reservedPrefix: string
}

function countSlashes (s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 0x2f) n++
  return n
}

function checkLimits (s: string, limits: TopicLimits): TopicProblem | undefined {
  return limitsProblem(s, Buffer.byteLength(s), countSlashes(s), limits)
}

function limitsProblem (s: string, bytes: number, slashes: number, limits: TopicLimits): TopicProblem | undefined {
  if (s.startsWith(limits.reservedPrefix)) {
    return bytes > limits.maxReservedTopicBytes ? 'too-long' : undefined
  }
  if (bytes > limits.maxTopicBytes) return 'too-long'
  if (slashes > limits.maxTopicSlashes) return 'too-deep'
  return undefined
}

/**
 * Checks a topic name from a PUBLISH or a Will. Syntax: at least one character [MQTT-4.7.3-1], no wildcards
 * [MQTT-3.3.2-2] [MQTT-4.7.0-1 … wildcards only in filters], no U+0000 [MQTT-4.7.3-2]. One pass on the
 * per-message path: the same loop counts the levels, and an ASCII topic's byte length is its length.
 */
export function checkTopicName (topic: string, limits?: TopicLimits): TopicProblem | undefined {
  const n = topic.length
  if (n === 0) return 'empty'
  let slashes = 0
  let ascii = true
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i)
    if (c === 0x2f) slashes++
    else if (c === 0x2b || c === 0x23) return 'wildcard'
    else if (c === 0) return 'null-char'
    else if (c >= 0x80) ascii = false
  }
  return limits === undefined ? undefined : limitsProblem(topic, ascii ? n : Buffer.byteLength(topic), slashes, limits)
}

/** A parsed subscription filter: `$share/{group}/{filter}` split into its parts (MQTT 5 §4.8.2). */
export interface ParsedFilter {
  /** The filter used for matching (without the `$share/{group}/` prefix). */
  readonly filter: string
  /** Share name for shared subscriptions. */
  readonly group?: string
}

const SHARE_PREFIX = '$share/'

/**
 * Checks and parses a topic filter. Rules: at least one character [MQTT-4.7.3-1]; `#` alone or after `/`, and
 * last [MQTT-4.7.1-2]; `+` occupies a whole level [MQTT-4.7.1-3]; no U+0000 [MQTT-4.7.3-2]. A shared
 * subscription's ShareName is at least one character without `/`, `+` or `#` [MQTT-4.8.2-1], followed by `/`
 * and a topic filter [MQTT-4.8.2-2]. Limits apply to the matching filter, not to the `$share` prefix.
 */
export function parseTopicFilter (raw: string, limits?: TopicLimits): ParsedFilter | TopicProblem {
  let filter = raw
  let group: string | undefined
  if (raw.startsWith(SHARE_PREFIX)) {
    const slash = raw.indexOf('/', SHARE_PREFIX.length)
    if (slash < 0) return 'share-invalid'
    group = raw.slice(SHARE_PREFIX.length, slash)
    if (group.length === 0 || group.includes('+') || group.includes('#')) return 'share-invalid'
    filter = raw.slice(slash + 1)
    if (filter.length === 0) return 'share-invalid'
  }
  const syntax = filterSyntaxProblem(filter)
  if (syntax !== undefined) return syntax
  if (limits !== undefined) {
    const problem = checkLimits(filter, limits)
    if (problem !== undefined) return problem
  }
  return group === undefined ? { filter } : { filter, group }
}

/** True when the filter contains `+` or `#`. */
export function hasWildcard (filter: string): boolean {
  return filter.includes('+') || filter.includes('#')
}
