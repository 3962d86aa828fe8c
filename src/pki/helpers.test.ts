/**
 * Shared test support for src/pki tests (no tests of its own): temp dirs, the openssl CLI, and @peculiar/x509 set up
 * as the brief's reference notes require. Tests may do I/O; the module itself must not.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { AppError } from '../core/index.ts'
import type { ErrorCode } from '../core/index.ts'

x509.cryptoProvider.set(globalThis.crypto)
export { x509 }

export interface OpensslResult { status: number, stdout: string, stderr: string, out: string }

/** Runs the system openssl synchronously (never while a server in this process must answer it). */
export function openssl (args: string[], opts: { cwd?: string, input?: string | Buffer } = {}): OpensslResult {
  const r = spawnSync('openssl', args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8' })
  if (r.error !== undefined) throw r.error
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, out: r.stdout + r.stderr }
}

/** Runs openssl without blocking the event loop (for the OCSP test, whose responder lives in this process). */
export function opensslAsync (args: string[], cwd: string): Promise<OpensslResult> {
  return new Promise((resolve) => {
    execFile('openssl', args, { cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ status, stdout, stderr, out: stdout + stderr })
    })
  })
}

/** A fresh temp dir removed after the test; returns a writer that yields the file path. */
export function tempDir (t: TestContext): { dir: string, write: (name: string, content: string | Buffer) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'thingward-pki-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return {
    dir,
    write: (name, content) => {
      const p = join(dir, name)
      writeFileSync(p, content)
      return p
    },
  }
}

/** Asserts `fn` throws an AppError with `code` and a message matching `message`. */
export function assertAppError (fn: () => unknown, code: ErrorCode, message: RegExp): AppError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof AppError, `expected AppError ${code}, got ${String(caught)}`)
  assert.equal(caught.code, code, `message was: ${caught.message}`)
  assert.match(caught.message, message)
  return caught
}
