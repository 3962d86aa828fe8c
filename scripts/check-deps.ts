/**
 * Enforces DESIGN.md §4 "Who may import whom" over src/: core imports nothing of ours and no I/O; domain modules
 * import core and each other's index.ts only, without cycles, and no I/O modules; storage implements ports;
 * adapters import domain index.ts files, never storage and never each other. Exits 1 listing every violation.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '..', 'src')
const DOMAIN = new Set(['policy', 'pki', 'kms', 'registry', 'shadow', 'audit', 'detect', 'posture', 'iam', 'command']) // DESIGN.md §4 domain modules, plus iam (operators) and command (MFA-gated commands)
const ADAPTERS = new Set(['gateway', 'http', 'cli', 'cluster'])
const IO_MODULES = /^(node:)?(fs|fs\/promises|net|http|https|http2|tls|dgram|child_process|sqlite|worker_threads|cluster|readline)$/

function files (dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.includes('/contract/') ? [p] : [])
  })
}

const moduleOf = (file: string): string => {
  const rel = relative(ROOT, file).split('/')
  return rel.length === 1 ? rel[0] : rel[0]
}

const problems: string[] = []
const domainEdges = new Map<string, Set<string>>()
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/g

for (const file of files(ROOT)) {
  const src = readFileSync(file, 'utf8')
  const from = moduleOf(file)
  for (const m of src.matchAll(IMPORT_RE)) {
    const spec = m[1]
    const where = `${relative(ROOT, file)} imports ${spec}`
    if (!spec.startsWith('.')) {
      if (IO_MODULES.test(spec) && (from === 'core' || DOMAIN.has(from) || from === 'config')) problems.push(`${where}: ${from} must not do I/O (use a port)`)
      continue
    }
    const target = resolve(dirname(file), spec)
    const rel = relative(ROOT, target)
    const to = rel.split('/')[0]
    if (to === from) continue
    const isIndex = rel === `${to}/index.ts`
    if (from === 'core') { problems.push(`${where}: core imports nothing of ours`); continue }
    if (from === 'config' && to !== 'core') problems.push(`${where}: config imports only core`)
    if (DOMAIN.has(from)) {
      if (to === 'core') continue
      if (!DOMAIN.has(to)) problems.push(`${where}: a domain module imports only core and other domain modules`)
      else if (!isIndex) problems.push(`${where}: import another module through its index.ts`)
      else { if (!domainEdges.has(from)) domainEdges.set(from, new Set()); domainEdges.get(from)?.add(to) }
    }
    if (ADAPTERS.has(from)) {
      if (to === 'storage') problems.push(`${where}: adapters never import storage`)
      else if (ADAPTERS.has(to)) problems.push(`${where}: adapters never import each other`)
      else if (DOMAIN.has(to) && !isIndex) problems.push(`${where}: import a domain module through its index.ts`)
      else if ((to === 'app.ts' || to === 'config') && from !== 'cli') problems.push(`${where}: only the CLI may reach the composition root`)
    }
    // Storage may implement an adapter's persistence port (gateway sessions), through its ports.ts only.
    if (from === 'storage' && ((ADAPTERS.has(to) && !rel.endsWith('/ports.ts')) || to === 'app.ts')) problems.push(`${where}: storage implements ports and imports no adapter (except its ports.ts)`)
  }
}

// Cycles between domain modules (DFS).
const state = new Map<string, 'visiting' | 'done'>()
function visit (n: string, path: string[]): void {
  if (state.get(n) === 'done') return
  if (state.get(n) === 'visiting') { problems.push(`dependency cycle: ${[...path, n].join(' -> ')}`); return }
  state.set(n, 'visiting')
  for (const m of domainEdges.get(n) ?? []) visit(m, [...path, n])
  state.set(n, 'done')
}
for (const n of domainEdges.keys()) visit(n, [])

if (problems.length > 0) {
  process.stderr.write(`dependency rules broken (${problems.length}):\n${problems.map(p => `  - ${p}`).join('\n')}\n`)
  process.exit(1)
}
process.stdout.write(`dependency rules hold (${files(ROOT).length} files)\n`)
