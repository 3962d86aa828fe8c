import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import type { SecureVersion } from 'node:tls'
import { startPlatform } from './helpers/platform.ts'

function handshake (port: number, ca: string, opts: { minVersion?: SecureVersion, maxVersion?: SecureVersion, servername?: string } = {}): Promise<{ protocol: string | null, authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: opts.servername ?? 'localhost', minVersion: opts.minVersion ?? 'TLSv1', maxVersion: opts.maxVersion }, () => {
      resolve({ protocol: s.getProtocol(), authorized: s.authorized })
      s.end()
    })
    s.on('error', reject)
  })
}

test('the API serves TLS 1.2 and 1.3 with a certificate from our CA (localhost and 127.0.0.1 SANs), and refuses TLS 1.1', async (t) => {
  const p = await startPlatform(t)
  assert.deepEqual(await handshake(p.port, p.caPem, { maxVersion: 'TLSv1.3' }), { protocol: 'TLSv1.3', authorized: true })
  assert.deepEqual(await handshake(p.port, p.caPem, { maxVersion: 'TLSv1.2' }), { protocol: 'TLSv1.2', authorized: true })
  await assert.rejects(handshake(p.port, p.caPem, { maxVersion: 'TLSv1.1' }))
  const ip = await new Promise<boolean>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: p.port, ca: p.caPem }, () => { resolve(s.authorized); s.end() })
    s.on('error', reject)
  })
  assert.equal(ip, true, 'the certificate names 127.0.0.1')
})

test('TLS 1.2 suites without forward secrecy or AEAD are refused', async (t) => {
  const p = await startPlatform(t)
  const attempt = (ciphers: string): Promise<void> => new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: p.port, ca: p.caPem, servername: 'localhost', maxVersion: 'TLSv1.2', ciphers }, () => { s.end(); resolve() })
    s.on('error', reject)
  })
  await attempt('ECDHE-ECDSA-AES128-GCM-SHA256')
  await assert.rejects(attempt('ECDHE-ECDSA-AES128-SHA256'))
  await assert.rejects(attempt('AES128-GCM-SHA256'))
})

test('a user-supplied server certificate replaces ours', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-usercert-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
    '-days', '2', '-subj', '/CN=api.example.test', '-addext', 'subjectAltName=DNS:api.example.test'], { cwd: dir, stdio: 'ignore' })
  const p = await startPlatform(t, { env: { THINGWARD_TLS_CERT_FILE: join(dir, 'cert.pem'), THINGWARD_TLS_KEY_FILE: join(dir, 'key.pem') } })
  const own = readFileSync(join(dir, 'cert.pem'), 'utf8')
  assert.equal((await handshake(p.port, own, { servername: 'api.example.test' })).authorized, true)
  await assert.rejects(handshake(p.port, p.caPem, { servername: 'api.example.test' }), /self.signed|unable to verify|certificate/i)
})
