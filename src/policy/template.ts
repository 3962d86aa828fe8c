import { MalformedPolicyError } from './errors.ts'
import type { Template, TemplatePart } from './types.ts'

/**
 * Splits a policy string into text, escapes and variables (IAM UG `reference_policies_variables`):
 * `${key}`, `${key, 'default'}` (whitespace around the key and the quoted default is ignored; `''` inside the
 * default is one quote), and the escapes `${*}`, `${?}`, `${$}` for literal `*`, `?`, `$`.
 * With `variables` false (Version 2008-10-17, or an element where variables are not substituted) the whole string
 * is one text part: `${…}` is then plain text, and a `*` inside it is still a wildcard where wildcards apply.
 */
export function parseTemplate (s: string, variables: boolean, path: string): Template {
  if (!variables || !s.includes('${')) return s.length === 0 ? [] : [{ kind: 'text', text: s }]
  const parts: TemplatePart[] = []
  let text = ''
  let lit = ''
  const flushText = (): void => { if (text.length > 0) { parts.push({ kind: 'text', text }); text = '' } }
  const flushLit = (): void => { if (lit.length > 0) { parts.push({ kind: 'literal', text: lit }); lit = '' } }
  let i = 0
  while (i < s.length) {
    if (s[i] === '$' && s[i + 1] === '{') {
      const esc = s[i + 2]
      if ((esc === '*' || esc === '?' || esc === '$') && s[i + 3] === '}') {
        flushText()
        lit += esc
        i += 4
        continue
      }
      flushText()
      flushLit()
      i += 2
      let j = i
      while (j < s.length && s[j] !== '}' && s[j] !== ',' && s[j] !== "'") j++
      const name = s.slice(i, j).trim()
      if (name.length === 0 || /[\s${}]/.test(name) || j >= s.length || s[j] === "'") {
        throw new MalformedPolicyError('VARIABLE_SYNTAX', path)
      }
      let defaultValue: string | undefined
      if (s[j] === ',') {
        j++
        while (j < s.length && s[j] === ' ') j++
        if (s[j] !== "'") throw new MalformedPolicyError('VARIABLE_SYNTAX', path)
        j++
        let d = ''
        while (true) {
          if (j >= s.length) throw new MalformedPolicyError('VARIABLE_SYNTAX', path)
          if (s[j] === "'") {
            if (s[j + 1] === "'") { d += "'"; j += 2; continue }
            j++
            break
          }
          d += s[j]
          j++
        }
        while (j < s.length && s[j] === ' ') j++
        if (s[j] !== '}') throw new MalformedPolicyError('VARIABLE_SYNTAX', path)
        defaultValue = d
      }
      parts.push({ kind: 'variable', key: name.toLowerCase(), name, defaultValue })
      i = j + 1
      continue
    }
    flushLit()
    text += s[i]
    i++
  }
  flushText()
  flushLit()
  return parts
}

/** True when the template has at least one variable. */
export function hasVariables (t: Template): boolean {
  for (const p of t) if (p.kind === 'variable') return true
  return false
}

/** Lower-cased keys of every variable in the template. */
export function templateKeys (t: Template): string[] {
  const out: string[] = []
  for (const p of t) if (p.kind === 'variable') out.push(p.key)
  return out
}
