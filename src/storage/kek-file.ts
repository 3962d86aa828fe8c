import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { AppError } from '../core/index.ts'

export interface LoadKekOptions {
  /** The value of THINGWARD_MASTER_KEY, or `undefined` when unset (only main.ts reads `process.env`). */
  readonly envValue?: string
  /** Key file used when the variable is unset (e.g. `<data dir>/master.key`). */
  readonly filePath: string
  /** Allows generating the key file when nothing is configured. Never in production. */
  readonly devMode: boolean
  /** Receives the loud dev-mode warning when a key file is generated. */
  readonly warn: (msg: string) => void
}

const KEK_BYTES = 32
/** Larger than any valid key file (44 base64 or 64 hex characters plus whitespace); anything bigger is garbage. */
const MAX_FILE_BYTES = 1024
const HEX_RE = /^[0-9a-fA-F]{64}$/
/** Standard or URL-safe base64 of 32 bytes: 43 characters plus an optional `=`. */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{43}|[A-Za-z0-9_-]{43})=?$/
const FORMAT_HINT = '32 bytes as base64 (44 characters) or hex (64 characters), e.g. from `openssl rand -base64 32`'

/**
 * Loads the 32-byte key-encryption key (KEK) that seals the keyring's master key versions, in this order:
 * 1. `envValue` (THINGWARD_MASTER_KEY), base64 or 64 hex characters; surrounding whitespace is ignored, and a
 *    set-but-empty value is an error, not "unset" (a typo must not silently fall through to another key).
 * 2. The key file at `filePath`, same text format. It must be a regular file with no group or other permission
 *    bits (0600 or 0400), checked on the open descriptor so the file checked is the file read.
 * 3. Only when `devMode`: a new random key written to `filePath` atomically (temp file created 0600, fsync,
 *    hard-linked into place so a concurrent starter's key is never overwritten, directory fsync), then `warn()`.
 *    An existing file is never replaced, even if it is garbage.
 *
 * Error messages never contain key material, and the value is never echoed.
 * @throws AppError ERR_KMS_MASTER_KEY_INVALID (malformed value or file content, unreadable or non-regular file;
 *   details name the source and path), ERR_KMS_KEY_FILE_INSECURE (group/other permission bits; details `path` and
 *   `mode`, e.g. `0644`), ERR_KMS_MASTER_KEY_MISSING (nothing configured outside dev mode, or the dev key file
 *   could not be created).
 */
export function loadKek (opts: LoadKekOptions): Buffer {
  if (opts.envValue !== undefined) {
    const key = parseKek(opts.envValue)
    if (key === undefined) {
      throw new AppError('ERR_KMS_MASTER_KEY_INVALID', `THINGWARD_MASTER_KEY must be ${FORMAT_HINT}`, { source: 'env' })
    }
    return key
  }
  const fromFile = readKeyFile(opts.filePath)
  if (fromFile !== undefined) return fromFile
  if (!opts.devMode) {
    throw new AppError('ERR_KMS_MASTER_KEY_MISSING',
      `no master key: set THINGWARD_MASTER_KEY to ${FORMAT_HINT}, or create the key file with mode 0600`,
      { path: opts.filePath })
  }
  const created = createKeyFile(opts.filePath)
  if (created === undefined) {
    // Another process created the file between our read and our link: use its key.
    const raced = readKeyFile(opts.filePath)
    if (raced === undefined) throw new AppError('ERR_KMS_MASTER_KEY_MISSING', 'master key file vanished while being created', { path: opts.filePath })
    return raced
  }
  opts.warn(`WARNING: DEV MODE generated a new master key-encryption key and wrote it to ${opts.filePath}. ` +
    'Everything the keyring seals depends on this file: if it is lost, all encrypted data (CA keys, secrets) is lost ' +
    'with it. Never run dev mode in production; set THINGWARD_MASTER_KEY or provision the key file (mode 0600).')
  return created
}

/** Decodes base64 (standard or URL-safe) or hex text of exactly 32 bytes; `undefined` for anything else. */
function parseKek (text: string): Buffer | undefined {
  const t = text.trim()
  if (HEX_RE.test(t)) return Buffer.from(t, 'hex')
  if (BASE64_RE.test(t)) {
    const key = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64')
    if (key.length === KEK_BYTES) return key
    key.fill(0)
  }
  return undefined
}

/** The key from the file, or `undefined` when the file does not exist. */
function readKeyFile (path: string): Buffer | undefined {
  let fd: number
  try {
    // O_NONBLOCK: opening a FIFO planted at the path must not hang startup (no effect on regular files).
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw new AppError('ERR_KMS_MASTER_KEY_INVALID', 'master key file could not be opened', { source: 'file', path, reason: errnoCode(err) }, { cause: err })
  }
  const buf = Buffer.alloc(MAX_FILE_BYTES + 1)
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new AppError('ERR_KMS_MASTER_KEY_INVALID', 'master key file is not a regular file', { source: 'file', path })
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new AppError('ERR_KMS_KEY_FILE_INSECURE',
        'master key file must not be accessible by group or others; run chmod 600 on it',
        { path, mode: `0${(st.mode & 0o777).toString(8).padStart(3, '0')}` })
    }
    let n = 0
    for (let r = -1; r !== 0 && n < buf.length;) { r = readSync(fd, buf, n, buf.length - n, null); n += r }
    const key = n > MAX_FILE_BYTES ? undefined : parseKek(buf.toString('latin1', 0, n))
    if (key === undefined) {
      throw new AppError('ERR_KMS_MASTER_KEY_INVALID', `master key file must contain ${FORMAT_HINT}`, { source: 'file', path })
    }
    return key
  } finally {
    buf.fill(0)
    closeSync(fd)
  }
}

/** Writes a new key file atomically; `undefined` when another process created the file first. */
function createKeyFile (path: string): Buffer | undefined {
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const key = randomBytes(KEK_BYTES)
  const text = Buffer.from(`${key.toString('base64')}\n`, 'latin1')
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      fchmodSync(fd, 0o600) // the umask can only clear bits, but make the mode exact regardless
      for (let n = 0; n < text.length;) n += writeSync(fd, text, n, text.length - n)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    try {
      // link(2) fails with EEXIST instead of replacing, unlike rename(2): two dev processes starting at once
      // must not each keep a different key while only one of them is on disk.
      linkSync(tmp, path)
    } catch (err) {
      const code = errnoCode(err)
      if (code === 'EEXIST') { key.fill(0); return undefined }
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err
      renameSync(tmp, path) // file system without hard links
    }
    fsyncDir(dir)
    return key
  } catch (err) {
    key.fill(0)
    throw new AppError('ERR_KMS_MASTER_KEY_MISSING', 'dev-mode master key file could not be created', { path, reason: errnoCode(err) }, { cause: err })
  } finally {
    text.fill(0)
    rmSync(tmp, { force: true })
  }
}

/** Makes the new directory entry durable (rename/link are only durable once the directory is synced). */
function fsyncDir (dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY)
  try { fsyncSync(fd) } finally { closeSync(fd) }
}

function errnoCode (err: unknown): string {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'unknown'
}
