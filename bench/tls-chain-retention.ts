/**
 * Tracks a memory retention seen in Node 24's TLS server (OpenSSL 3.5), below Thingward: when clients send their
 * certificate chain (leaf + CA, as a Node or OpenSSL client does when it is given a `ca`), the server process's
 * memory grows by a few KB for every connection ever made, even after every connection closed; with leaf-only
 * clients it does not. A bare node:tls server with the gateway's TLS settings, no Thingward code.
 *
 * Each round opens N mutual-TLS connections, closes them all, collects garbage and reads the server's VmRSS. Memory
 * that is merely kept for reuse stops growing after the first round; retained memory keeps growing by the same
 * amount every round. Prints the growth per connection for rounds 2… (chain clients, then leaf-only clients).
 *
 * Usage: node_modules/.bin/node --expose-gc bench/tls-chain-retention.ts [--connections 2000] [--rounds 4]
 */
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, createServer, createSecureContext } from 'node:tls'
import type { SecureContext, TLSSocket } from 'node:tls'
import { STRONG_CIPHERS } from '../src/gateway/index.ts'
import { cleanupPki, createPki } from '../test/gateway-helpers.ts'

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : Number(process.argv[i + 1])
}
const N = arg('connections', 2000)
const ROUNDS = arg('rounds', 4)

interface ClientCfg { port: number, ca: string, cert: string, key: string, chain: boolean, count: number }

/** Client process: opens `count` connections (100 at a time), reports, then closes them all on request. */
async function client (): Promise<void> {
  const open: TLSSocket[] = []
  process.on('message', (m: { cmd: 'open', cfg: ClientCfg } | { cmd: 'close' }) => {
    if (m.cmd === 'close') {
      for (const s of open.splice(0)) s.destroy()
      process.send?.({ closed: true })
      return
    }
    const { cfg } = m
    // With `ca`, OpenSSL builds and sends the chain (leaf + CA); without it, only the leaf goes out (and the
    // client cannot verify the server, which does not matter for this measurement).
    const ctx: SecureContext = createSecureContext({ cert: cfg.cert, key: cfg.key, ...(cfg.chain ? { ca: cfg.ca } : {}) })
    let started = 0
    let done = 0
    const one = (): void => {
      if (started >= cfg.count) return
      started++
      const s = connect({ port: cfg.port, host: '127.0.0.1', secureContext: ctx, servername: 'localhost', rejectUnauthorized: cfg.chain }, () => {
        open.push(s)
        if (++done === cfg.count) process.send?.({ opened: done })
        else one()
      })
      s.on('error', () => { if (++done === cfg.count) process.send?.({ opened: done }); else one() })
    }
    for (let i = 0; i < 100; i++) one()
  })
}

function rssKb (): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m === null ? Number.NaN : Number(m[1])
}

async function main (): Promise<void> {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error('run with --expose-gc')
  const pki = createPki(['device'])
  const id = pki.client('device')
  const server = createServer({
    cert: pki.server.cert, key: pki.server.key, ca: [pki.caCert], requestCert: true, rejectUnauthorized: true,
    minVersion: 'TLSv1.2', ciphers: STRONG_CIPHERS,
  }, (s) => { s.on('error', () => {}) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const child = fork(import.meta.filename, ['--client'])
  const next = (): Promise<unknown> => new Promise(resolve => child.once('message', resolve))
  const settle = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) { collect(); await new Promise(resolve => setTimeout(resolve, 200)) }
    return rssKb()
  }
  const out = (s: string): void => { process.stdout.write(`${s}\n`) }
  out(`TLS chain retention — node ${process.version}, OpenSSL ${process.versions.openssl}, ${N} connections per round, ${ROUNDS} rounds`)
  for (const chain of [true, false]) {
    const rss: number[] = [await settle()]
    for (let r = 0; r < ROUNDS; r++) {
      const opened = next()
      child.send({ cmd: 'open', cfg: { port, ca: pki.caCert, cert: id.cert, key: id.key, chain, count: N } satisfies ClientCfg })
      await opened
      const closed = next()
      child.send({ cmd: 'close' })
      await closed
      await new Promise(resolve => setTimeout(resolve, 500))
      rss.push(await settle())
    }
    const later = rss.slice(2).map((x, i) => (x - rss[i + 1]) / N)
    const mean = later.reduce((a, b) => a + b, 0) / Math.max(1, later.length)
    out(`  ${chain ? 'chain (leaf + CA)' : 'leaf only        '}: RSS after each round ${rss.map(x => Math.round(x / 1024)).join(' -> ')} MB; growth per connection in rounds 2..${ROUNDS}: ${later.map(x => x.toFixed(2)).join(', ')} KB (mean ${mean.toFixed(2)} KB)`)
  }
  child.kill()
  server.close()
  cleanupPki(pki)
}

if (process.argv.includes('--client')) await client()
else await main()
