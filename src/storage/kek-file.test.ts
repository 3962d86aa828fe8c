import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { loadKek } from './kek-file.ts'
import type { LoadKekOptions } from './kek-file.ts'

function tempDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-kek-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function opts (filePath: string, more: Partial<LoadKekOptions> = {}): LoadKekOptions & { warnings: string[] } {
  const warnings: string[] = []
  return { filePath, devMode: false, warn: (m) => { warnings.push(m) }, warnings, ...more }
}

function writeKeyFile (path: string, content: string | Buffer, mode: number): void {
  writeFileSync(path, content)
  chmodSync(path, mode)
}

const codeOf = (err: unknown): string => (err as { code?: string }).code ?? ''

test('THINGWARD_MASTER_KEY as base64 (padded, unpadded, URL-safe, with whitespace) or hex gives the 32 bytes', (t) => {
  const dir = tempDir(t)
  const key = Buffer.from('fbff' + 'a1'.repeat(30), 'hex') // has + and / in standard base64
  for (const value of [key.toString('base64'), key.toString('base64').replace('=', ''), key.toString('base64url'),
    ` ${key.toString('base64')}\n`, key.toString('hex'), key.toString('hex').toUpperCase()]) {
    const o = opts(join(dir, 'master.key'), { envValue: value, devMode: true })
    assert.deepEqual(loadKek(o), key, value)
    assert.deepEqual(o.warnings, [])
  }
  assert.deepEqual(readdirSync(dir), [], 'the variable wins: no key file is created even in dev mode')
})

test('a malformed THINGWARD_MASTER_KEY is refused, naming the format but never the value', (t) => {
  const dir = tempDir(t)
  const bad = ['', '   ', randomBytes(31).toString('base64'), randomBytes(33).toString('base64'),
    randomBytes(48).toString('base64'), 'ab'.repeat(31) + 'a', 'ab'.repeat(33), 'zz'.repeat(32),
    'not a key at all, just some text', randomBytes(32).toString('base64').slice(0, 40) + '!!!=']
  for (const envValue of bad) {
    assert.throws(() => loadKek(opts(join(dir, 'master.key'), { envValue, devMode: true })), (err: unknown) => {
      assert.equal(codeOf(err), 'ERR_KMS_MASTER_KEY_INVALID')
      const msg = (err as Error).message
      assert.match(msg, /THINGWARD_MASTER_KEY must be 32 bytes as base64 \(44 characters\) or hex \(64 characters\)/)
      if (envValue.trim() !== '') assert.ok(!msg.includes(envValue.trim()), 'value not echoed')
      return true
    }, JSON.stringify(envValue))
  }
  assert.deepEqual(readdirSync(dir), [], 'a bad variable does not fall through to generating a file')
})

test('a 0600 or 0400 key file (base64 or hex) is loaded when the variable is unset', (t) => {
  const dir = tempDir(t)
  const key = randomBytes(32)
  const p1 = join(dir, 'a.key')
  writeKeyFile(p1, `${key.toString('base64')}\n`, 0o600)
  assert.deepEqual(loadKek(opts(p1)), key)
  const p2 = join(dir, 'b.key')
  writeKeyFile(p2, key.toString('hex'), 0o400)
  assert.deepEqual(loadKek(opts(p2)), key)
})

test('a key file readable or writable by group or others is refused with its path and mode', (t) => {
  const dir = tempDir(t)
  const key = randomBytes(32).toString('base64')
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610, 0o601, 0o666]) {
    const path = join(dir, `k${mode.toString(8)}.key`)
    writeKeyFile(path, key, mode)
    for (const devMode of [false, true]) {
      assert.throws(() => loadKek(opts(path, { devMode })), (err: unknown) => {
        assert.equal(codeOf(err), 'ERR_KMS_KEY_FILE_INSECURE')
        assert.deepEqual((err as { details: unknown }).details, { path, mode: `0${mode.toString(8)}` })
        assert.match((err as Error).message, /group or others.*chmod 600/)
        assert.ok(!(err as Error).message.includes(key))
        return true
      })
    }
    assert.equal(readFileSync(path, 'utf8'), key, 'never replaced')
  }
})

test('a key file with garbage content is refused without echoing it, and never replaced in dev mode', (t) => {
  const dir = tempDir(t)
  const contents: Array<string | Buffer> = ['', '\n', 'hello', randomBytes(32), randomBytes(31).toString('base64'),
    randomBytes(32).toString('base64').repeat(2), 'A'.repeat(5000), `${randomBytes(32).toString('hex')}x`]
  for (const [i, content] of contents.entries()) {
    const path = join(dir, `g${i}.key`)
    writeKeyFile(path, content, 0o600)
    for (const devMode of [false, true]) {
      const o = opts(path, { devMode })
      assert.throws(() => loadKek(o), (err: unknown) => {
        assert.equal(codeOf(err), 'ERR_KMS_MASTER_KEY_INVALID')
        assert.match((err as Error).message, /master key file must contain 32 bytes as base64/)
        assert.equal((err as { details: Record<string, unknown> }).details.path, path)
        if (content.length > 8) assert.ok(!(err as Error).message.includes(content.toString().trim()))
        return true
      }, `content ${i}`)
      assert.deepEqual(o.warnings, [])
    }
    assert.deepEqual(readFileSync(path), Buffer.from(content))
  }
})

test('a directory or a FIFO at the key path is refused as not a regular file (without hanging)', (t) => {
  const dir = tempDir(t)
  const sub = join(dir, 'sub.key')
  mkdirSync(sub, { mode: 0o700 })
  assert.throws(() => loadKek(opts(sub, { devMode: true })), { code: 'ERR_KMS_MASTER_KEY_INVALID', message: 'master key file is not a regular file' })
  const fifo = join(dir, 'fifo.key')
  if (spawnSync('mkfifo', ['-m', '600', fifo]).status !== 0) { t.diagnostic('mkfifo unavailable; FIFO case skipped'); return }
  assert.throws(() => loadKek(opts(fifo)), { code: 'ERR_KMS_MASTER_KEY_INVALID', message: 'master key file is not a regular file' })
})

test('nothing configured outside dev mode: ERR_KMS_MASTER_KEY_MISSING, and no file is created', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'master.key')
  const o = opts(path)
  assert.throws(() => loadKek(o), (err: unknown) => {
    assert.equal(codeOf(err), 'ERR_KMS_MASTER_KEY_MISSING')
    assert.match((err as Error).message, /set THINGWARD_MASTER_KEY .*or create the key file with mode 0600/)
    assert.deepEqual((err as { details: unknown }).details, { path })
    return true
  })
  assert.deepEqual(readdirSync(dir), [])
  assert.deepEqual(o.warnings, [])
})

test('dev mode generates a 0600 key file atomically, warns loudly once, and reuses it next time', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'data', 'nested', 'master.key')
  const previousUmask = process.umask(0) // the file must be 0600 whatever the umask
  t.after(() => { process.umask(previousUmask) })
  const o = opts(path, { devMode: true })
  const key = loadKek(o)
  assert.equal(key.length, 32)
  const st = statSync(path)
  assert.ok(st.isFile())
  assert.equal(st.mode & 0o777, 0o600)
  assert.equal(statSync(join(dir, 'data', 'nested')).mode & 0o777, 0o700, 'created directories are private')
  assert.equal(readFileSync(path, 'utf8'), `${key.toString('base64')}\n`)
  assert.deepEqual(readdirSync(join(dir, 'data', 'nested')), ['master.key'], 'no temp file left behind')
  assert.equal(o.warnings.length, 1)
  assert.match(o.warnings[0], /WARNING: DEV MODE generated a new master key-encryption key/)
  assert.ok(o.warnings[0].includes(path))
  assert.ok(!o.warnings[0].includes(key.toString('base64')), 'the key itself is never logged')

  const again = opts(path, { devMode: true })
  assert.deepEqual(loadKek(again), key)
  assert.deepEqual(again.warnings, [])
  assert.deepEqual(loadKek(opts(path)), key, 'and outside dev mode too')
})

test('an unusable path is refused: not a directory on the way, or a directory that cannot be created', (t) => {
  const dir = tempDir(t)
  const blocker = join(dir, 'file')
  writeFileSync(blocker, 'x')
  assert.throws(() => loadKek(opts(join(blocker, 'master.key'), { devMode: true })),
    { code: 'ERR_KMS_MASTER_KEY_INVALID', message: 'master key file could not be opened', details: { source: 'file', path: join(blocker, 'master.key'), reason: 'ENOTDIR' } })
  // A dangling symlink as the parent directory: mkdir fails even for root (a chmod-based test would not).
  const dangling = join(dir, 'link')
  symlinkSync(join(dir, 'nowhere'), dangling)
  assert.throws(() => loadKek(opts(join(dangling, 'master.key'), { devMode: true })),
    { code: 'ERR_KMS_MASTER_KEY_MISSING', message: 'dev-mode master key file could not be created' })
  assert.deepEqual(readdirSync(dir).sort(), ['file', 'link'])
})
