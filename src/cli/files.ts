import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Writes a file atomically with the given mode: temp file (created with that mode, so it is never readable by
 * others even for a moment), fsync, rename. A crash leaves either the old file or the new one, never half.
 */
export function writeFileAtomic (path: string, data: string | Buffer, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    fsyncSync(fd)
  } finally { closeSync(fd) }
  renameSync(tmp, path)
}
