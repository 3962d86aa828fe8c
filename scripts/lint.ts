/**
 * Project lint rules that tsc does not enforce (DESIGN.md §5): no `any`, no non-erasable syntax, no focused
 * tests, no console output from library code, no commented-out code markers, no trailing whitespace.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '..')
const DIRS = ['src', 'test', 'bench', 'scripts']

function files (dir: string): string[] {
  let entries: string[]
  try { entries = readdirSync(dir) } catch { return [] }
  return entries.flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : (p.endsWith('.ts') ? [p] : [])
  })
}

const RULES: Array<{ re: RegExp, why: string, only?: (f: string) => boolean }> = [
  { re: /([\w)\]]\??:\s*any\b|\bas\s+any\b|<any>|\bany\[\])/, why: 'no `any`: validate `unknown` instead', only: f => f !== 'scripts/lint.ts' },
  { re: /^\s*(export\s+)?(const\s+)?enum\s+\w+/, why: 'no enum (not erasable): use an `as const` object' },
  { re: /^\s*(export\s+)?namespace\s+\w+/, why: 'no namespace (not erasable)' },
  { re: /\b(test|it|describe)\.only\(|\{\s*only:\s*true/, why: 'no focused tests' },
  { re: /\bconsole\.(log|debug|info)\(/, why: 'no console output in library code: use the logger', only: f => f.startsWith('src/') },
  { re: /[ \t]+$/, why: 'trailing whitespace' },
]

const problems: string[] = []
let count = 0
for (const d of DIRS) {
  for (const file of files(join(ROOT, d))) {
    count++
    const rel = relative(ROOT, file)
    const lines = readFileSync(file, 'utf8').split('\n')
    lines.forEach((line, i) => {
      for (const r of RULES) {
        if (r.only !== undefined && !r.only(rel)) continue
        if (r.re.test(line)) problems.push(`${rel}:${i + 1}: ${r.why}`)
      }
    })
  }
}
if (problems.length > 0) {
  process.stderr.write(`lint found ${problems.length} problem(s):\n${problems.map(p => `  ${p}`).join('\n')}\n`)
  process.exit(1)
}
process.stdout.write(`lint clean (${count} files)\n`)
