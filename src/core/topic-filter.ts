/**
 * MQTT topic filters (MQTT 3.1.1 and 5 §4.7): the one matcher and the one syntax check shared by the gateway,
 * payload schemas and sensitive command topics. Pure; the gateway's topic trie is its fast path for routing.
 */

/** Why a filter's syntax is refused: empty [MQTT-4.7.3-1], U+0000 [MQTT-4.7.3-2], or a misplaced wildcard. */
export type FilterSyntaxProblem = 'empty' | 'null-char' | 'syntax'

/**
 * Checks a filter's syntax (no `$share/` handling): at least one character, no U+0000, `#` only as the whole
 * last level [MQTT-4.7.1-2], `+` only as a whole level [MQTT-4.7.1-3].
 */
export function filterSyntaxProblem (filter: string): FilterSyntaxProblem | undefined {
  const n = filter.length
  if (n === 0) return 'empty'
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i)
    if (c === 0) return 'null-char'
    if (c === 0x23) { // '#'
      if (i !== n - 1) return 'syntax'
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return 'syntax'
    } else if (c === 0x2b) { // '+'
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return 'syntax'
      if (i < n - 1 && filter.charCodeAt(i + 1) !== 0x2f) return 'syntax'
    }
  }
  return undefined
}

/**
 * Pre-split filter levels against a topic, without splitting the topic or allocating (callers that check many
 * topics split the filter once): `+` is one level, `#` the parent level and everything below (`a/#` matches
 * `a`, MQTT 3.1.1 §4.7.1.2), and a filter starting with a wildcard does not match a topic starting with `$`
 * [MQTT-4.7.2-1].
 */
export function levelsMatch (f: readonly string[], topic: string): boolean {
  if ((topic.charCodeAt(0) === 0x24) !== (f[0].charCodeAt(0) === 0x24)) return false
  let start = 0
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (start > topic.length) return false
    let end = topic.indexOf('/', start)
    if (end < 0) end = topic.length
    if (f[i] !== '+' && (end - start !== f[i].length || !topic.startsWith(f[i], start))) return false
    start = end + 1
  }
  return start === topic.length + 1
}

/** Whether `filter` matches `topic` (see {@link levelsMatch}). */
export function topicMatches (filter: string, topic: string): boolean {
  return levelsMatch(filter.split('/'), topic)
}
