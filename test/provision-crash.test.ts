import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { X509Certificate, createHash, createPublicKey, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createApp } from '../src/app.ts'
import { loadConfig } from '../src/config/index.ts'
import { ROLES } from '../src/policy/index.ts'

const ROOT = resolve(import.meta.dirname, '..')
const NODE = process.execPath
const MAIN = join(ROOT, 'src', 'main.ts')

function startServer (env: Record<string, string>): Promise<{ proc: ChildProcess, endpoint: string }> {
  return new Promise((resolveStart, reject) => {
    const proc = spawn(NODE, [MAIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /listening on (https:\/\/[\d.]+:\d+)/.exec(out)
      if (m !== null) resolveStart({ proc, endpoint: m[1] })
    })
    proc.on('exit', (code) => reject(new Error(`server exited early (${code}): ${out}`)))
  })
}

const bundles = (out: string): string[] => existsSync(out) ? readdirSync(out).filter(d => !d.startsWith('.') && existsSync(join(out, d, 'cert.pem'))) : []

test('kill -9 the server during `thingward provision --count 5000`: every written bundle is ACTIVE, no half record; a rerun completes', { timeout: 300_000 }, async (t) => {
  const role = ROLES[0]
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-crash-'))
  const out = join(dataDir, 'bundles')
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', THINGWARD_MASTER_KEY: randomBytes(32).toString('base64'),
    THINGWARD_DATA_DIR: dataDir, THINGWARD_HTTP_PORT: '0', THINGWARD_MQTT_PORT: '0', THINGWARD_LOG_LEVEL: 'error',
  }
  const init = JSON.parse(execFileSync(NODE, [MAIN, 'init', '--json'], { env: baseEnv, encoding: 'utf8' })) as { accessKeyId: string, secretAccessKey: string, caFile: string }
  const cliEnv = { ...baseEnv, THINGWARD_ACCESS_KEY_ID: init.accessKeyId, THINGWARD_SECRET_ACCESS_KEY: init.secretAccessKey, THINGWARD_CA_FILE: init.caFile }

  const first = await startServer(baseEnv)
  // `serve` re-executed itself (same PID) with the server's allocator settings (SERVER_PROCESS_ENV).
  const environ = readFileSync(`/proc/${first.proc.pid ?? 0}/environ`, 'utf8').split('\0')
  assert.ok(environ.includes('MALLOC_MMAP_THRESHOLD_=65536'), 'serve runs with MALLOC_MMAP_THRESHOLD_')
  const cli = spawn(NODE, [MAIN, 'provision', '--count', '5000', '--role', role, '--out', out, '--endpoint', first.endpoint, '--batch', '250'], { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let cliErr = ''
  cli.stderr?.on('data', (c: Buffer) => { cliErr += c.toString() })
  const cliExit = new Promise<number | null>(r => cli.on('exit', r))
  // Kill the server hard once part of the fleet is written, while batches are in flight.
  while (bundles(out).length < 1200) {
    if (cli.exitCode !== null) assert.fail(`provision ended before the crash: ${cliErr}`)
    await new Promise(r => setTimeout(r, 20))
  }
  first.proc.kill('SIGKILL')
  const code = await cliExit
  assert.notEqual(code, 0, 'the CLI reports the failure')
  const written = bundles(out)
  assert.ok(written.length >= 1200 && written.length < 5000, `partial fleet written: ${written.length}`)

  // Offline check of the store as it was left by the crash.
  const check = async (): Promise<{ things: number, certs: number, principals: number, attachments: number }> => {
    const app = await createApp(loadConfig({ THINGWARD_MASTER_KEY: baseEnv.THINGWARD_MASTER_KEY }, {}, { dataDir }), { logger: false })
    try {
      const n = (sql: string): number => Number(app.db.get<{ n: number }>(sql)?.n)
      for (const name of bundles(out)) {
        const pem = readFileSync(join(out, name, 'cert.pem'), 'utf8')
        const id = createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')
        const cert = await app.certificates.find(id)
        assert.equal(cert?.status, 'ACTIVE', `${name}'s certificate is ACTIVE`)
        const principals = await app.policies.listThingPrincipals(name, undefined, 10)
        assert.deepEqual(principals.items.map(p => p.principal), [app.certificates.certArn(id)])
        assert.ok(createPublicKey(readFileSync(join(out, name, 'key.pem'), 'utf8')).export({ type: 'spki', format: 'der' }).equals(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })))
        assert.equal(statSync(join(out, name, 'key.pem')).mode & 0o777, 0o600)
      }
      return {
        things: n("SELECT COUNT(*) AS n FROM things WHERE type_name IS NOT NULL"),
        certs: n("SELECT COUNT(*) AS n FROM certificates WHERE status = 'ACTIVE'"),
        principals: n('SELECT COUNT(*) AS n FROM thing_principals'),
        attachments: n("SELECT COUNT(*) AS n FROM policy_targets WHERE target LIKE '%:cert/%'"),
      }
    } finally { await app.close() }
  }
  const afterCrash = await check()
  // No half record: every thing has its certificate, attachment and policy, or none of them exists.
  assert.equal(afterCrash.things, afterCrash.certs)
  assert.equal(afterCrash.things, afterCrash.principals)
  assert.equal(afterCrash.things, afterCrash.attachments)
  assert.ok(afterCrash.things >= written.length)

  // Restart and rerun: journaled devices committed before the crash are recovered, the rest provisioned.
  // An operator's own value is kept.
  const second = await startServer({ ...baseEnv, MALLOC_MMAP_THRESHOLD_: '131072' })
  assert.ok(readFileSync(`/proc/${second.proc.pid ?? 0}/environ`, 'utf8').split('\0').includes('MALLOC_MMAP_THRESHOLD_=131072'))
  t.after(() => { second.proc.kill('SIGKILL') })
  execFileSync(NODE, [MAIN, 'provision', '--count', '5000', '--role', role, '--out', out, '--endpoint', second.endpoint, '--batch', '250'], { env: cliEnv, stdio: 'pipe' })
  second.proc.kill('SIGTERM')
  await new Promise(r => second.proc.on('exit', r))
  assert.equal(bundles(out).length, 5000)
  const final = await check()
  assert.deepEqual(final, { things: 5000, certs: 5000, principals: 5000, attachments: 5000 })
})
