import type { Command } from 'commander'
import { Option } from 'commander'
import { createWriteStream, readFileSync } from 'node:fs'
import { createAuditSink, openAuditLogReadOnly, openAuditStore, timerScheduler } from '../app.ts'
import type { AuditSinkSpec } from '../app.ts'
import type { Config } from '../config/index.ts'
import { AuditStreamer, ExportFormat, parseAnchors, resolveTimeRange, verifyLog } from '../audit/index.ts'
import type { AuditAnchor, VerifyReport } from '../audit/index.ts'
import { AppError, InvalidRequestError } from '../core/index.ts'
import type { ApiClient } from './client.ts'
import type { CliIo } from './program.ts'

/** What the audit commands borrow from program.ts. */
export interface AuditCliContext {
  readonly io: CliIo
  readonly configFor: (o: { data?: string }) => Config
  readonly clientFor: (o: object) => ApiClient
  /** Adds --endpoint, --ca-file and --data to a command. */
  readonly apiOpts: (c: Command) => Command
}

type Filters = { from?: string, to?: string, principal?: string, thing?: string, action?: string, outcome?: string }

const filterOpts = (c: Command): Command => c
  .option('--from <time>', 'start of the time range (ISO 8601 or epoch ms), inclusive')
  .option('--to <time>', 'end of the time range (ISO 8601 or epoch ms), exclusive')
  .option('--principal <actor>', 'who acted, e.g. user/admin or a certificate principal')
  .option('--thing <name>', 'the thing (MQTT: the client id)')
  .option('--action <action>', 'e.g. iot.CreateThing, mqtt.connect, kms.decrypt')
  .addOption(new Option('--outcome <outcome>', 'outcome').choices(['success', 'denied', 'failure']))

const filterQuery = (o: Filters): Record<string, string | undefined> =>
  ({ from: o.from, to: o.to, principal: o.principal, thing: o.thing, action: o.action, outcome: o.outcome })

/** Epoch ms of an ISO 8601 time or a number of ms. */
function timeArg (v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const ms = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v)
  if (!Number.isFinite(ms)) throw new InvalidRequestError('time must be ISO 8601 or epoch milliseconds', { field: flag })
  return ms
}

/** `--from`/`--to` of verify: a record number (`seq:N` or a plain number below 10^12) or a time. */
function rangeArg (v: string | undefined, flag: string): { seq?: number, ms?: number } {
  if (v === undefined) return {}
  const m = /^(?:seq:)?(\d{1,11})$/.exec(v)
  if (m !== null) return { seq: Number(m[1]) }
  return { ms: timeArg(v, flag) }
}

/** Human summary of a verification report. */
export function formatReport (r: VerifyReport): string {
  const out: string[] = []
  if (r.firstBad !== undefined) {
    const at = r.firstBad.seq !== undefined ? `record ${r.firstBad.seq}` : `digest #${r.firstBad.digestSeq ?? '?'}`
    out.push(`audit log verification FAILED at ${at} (${r.firstBad.kind}): ${r.firstBad.message}`)
  } else {
    out.push(`audit log OK: ${r.checkedEvents} records verified${r.firstSeq === undefined ? '' : ` (log holds ${r.firstSeq} to ${r.lastSeq})`}`)
  }
  const ld = r.lastDigest
  out.push(`digests: ${r.digests} (${r.signaturesChecked} signatures checked); signed through record ${r.coveredThroughSeq}` +
    (ld === undefined ? '' : ` by digest #${ld.digestSeq} (${ld.reason}, ${new Date(ld.signedAtMs).toISOString()})`))
  if (r.prunedThroughSeq > 0) out.push(`pruned: records 1 to ${r.prunedThroughSeq} (recorded prune)`)
  if (r.unsignedTail !== undefined) out.push(`unsigned tail: records ${r.unsignedTail.fromSeq} to ${r.unsignedTail.toSeq} are hash-linked but not yet signed`)
  out.push(`signing keys: ${r.signingKeys.join(', ') || 'none'}${r.keysPinned ? ' (pinned)' : ' (not pinned: pass --trusted-key to check them against a copy kept elsewhere)'}`)
  out.push(r.closed ? 'the log ends with a shutdown digest' : 'the log does not end with a shutdown digest')
  for (const g of r.gaps) out.push(`gap: no digest from ${new Date(g.fromMs).toISOString()} to ${new Date(g.toMs).toISOString()} (after digest #${g.afterDigestSeq})`)
  if (r.uncleanStops.length > 0) out.push(`unclean stops before digests: ${r.uncleanStops.map(d => `#${d}`).join(', ')}`)
  for (const w of r.warnings) out.push(`warning: ${w}`)
  return `${out.join('\n')}\n`
}

/** Fails the command (non-zero exit) when the report names a problem. */
function failOn (r: VerifyReport): void {
  if (r.firstBad === undefined) return
  throw new AppError('ERR_AUDIT_CHAIN_BROKEN', 'audit log verification failed', {
    kind: r.firstBad.kind, ...(r.firstBad.seq === undefined ? {} : { seq: r.firstBad.seq }), ...(r.firstBad.digestSeq === undefined ? {} : { digestSeq: r.firstBad.digestSeq }),
  })
}

/** Parses `--sink`: `file:PATH` (or a plain path), `syslog+tls://HOST:PORT`, `https://…`. */
export function parseSink (uri: string, o: { sinkCa?: string, sinkCert?: string, sinkKey?: string, hostname?: string }, env: CliIo['env']): AuditSinkSpec {
  const read = (f: string | undefined): string | undefined => f === undefined ? undefined : readFileSync(f, 'utf8')
  if (uri.startsWith('syslog+tls://')) {
    const u = new URL(uri.replace(/^syslog\+tls:/, 'https:'))
    const port = u.port === '' ? 6514 : Number(u.port) // RFC 5425 §4.1: port 6514
    return { kind: 'syslog', host: u.hostname.replace(/^\[|\]$/g, ''), port, ca: read(o.sinkCa), cert: read(o.sinkCert), key: read(o.sinkKey), hostname: o.hostname }
  }
  if (uri.startsWith('https://')) return { kind: 'webhook', url: uri, ca: read(o.sinkCa), secret: env.THINGWARD_AUDIT_WEBHOOK_SECRET }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new AppError('ERR_CONFIG_INVALID', 'invalid configuration: --sink must be file:PATH, syslog+tls://HOST:PORT or an https:// URL', { setting: 'sink' })
  return { kind: 'file', path: uri.replace(/^file:/, '') }
}

/**
 * `thingward audit …`: verify (offline on a data directory, or through the API), query, export, head,
 * public-keys, sign, rotate-key, prune, stream.
 */
export function registerAuditCommands (program: Command, ctx: AuditCliContext): void {
  const { io, configFor, clientFor, apiOpts } = ctx
  const print = (v: unknown): void => { io.stdout(`${JSON.stringify(v, null, 2)}\n`) }
  const audit = program.command('audit').description('tamper-evident audit log: verify, query, export, stream')

  apiOpts(audit.command('verify'))
    .description('walk records and digests; report the first altered, inserted, deleted, reordered or truncated record (non-zero exit). ' +
      'With --data and no --endpoint it reads the data directory directly (server stopped); otherwise it asks the running server.')
    .option('--from <seq|time>', 'first record (number) or time (ISO 8601)')
    .option('--to <seq|time>', 'last record (number) or time (ISO 8601)')
    .option('--trusted-key <fingerprint...>', 'signing key fingerprints obtained out of band (audit public-keys)')
    .option('--anchor <file...>', 'copies held outside the database: a stream file (JSON lines / OCSF) or saved `audit head` output')
    .option('--allow-open-end', 'offline: accept a log that does not end with a shutdown digest (a crashed server or a live copy)')
    .option('--json', 'print the report as JSON')
    .action(async (o: { from?: string, to?: string, trustedKey?: string[], anchor?: string[], allowOpenEnd?: boolean, json?: boolean, data?: string, endpoint?: string }) => {
      const from = rangeArg(o.from, 'from')
      const to = rangeArg(o.to, 'to')
      const anchorsText = (o.anchor ?? []).map(f => readFileSync(f, 'utf8'))
      let report: VerifyReport
      if (o.data !== undefined && o.endpoint === undefined) {
        const source = openAuditLogReadOnly(configFor({ data: o.data }))
        try {
          const anchors: AuditAnchor[] = anchorsText.flatMap(t => parseAnchors(t))
          const times = from.ms !== undefined || to.ms !== undefined ? await resolveTimeRange(source, from.ms, to.ms) : {}
          const fromSeq = from.seq ?? times.fromSeq
          const toSeq = to.seq ?? times.toSeq
          report = await verifyLog(source, {
            ...(fromSeq === undefined ? {} : { fromSeq }), ...(toSeq === undefined ? {} : { toSeq }),
            ...(o.trustedKey === undefined ? {} : { trustedKeys: o.trustedKey }), anchors, requireClosed: o.allowOpenEnd !== true,
          })
        } finally {
          source.close()
        }
      } else {
        report = await clientFor(o).call<VerifyReport>('POST', '/thingward/audit/verify', {
          body: {
            fromSeq: from.seq, toSeq: to.seq, from: from.ms, to: to.ms, trustedKeys: o.trustedKey,
            ...(anchorsText.length > 0 ? { anchors: anchorsText.join('\n') } : {}),
          },
        })
      }
      if (o.json === true) print(report); else io.stdout(formatReport(report))
      failOn(report)
    })

  apiOpts(filterOpts(audit.command('query'))).description('query events (JSON), newest pages on request')
    .option('--max <n>', 'events per page (1-10000)', '100').option('--next-token <token>', 'continue after a previous page').option('--all', 'follow every page')
    .action(async (o: Filters & { max: string, nextToken?: string, all?: boolean }) => {
      const client = clientFor(o)
      let token = o.nextToken
      const events: unknown[] = []
      do {
        const page = await client.call<{ events: unknown[], nextToken?: string }>('GET', '/thingward/audit/events', { query: { ...filterQuery(o), maxResults: o.max, nextToken: token } })
        events.push(...page.events)
        token = page.nextToken
      } while (o.all === true && token !== undefined)
      print({ events, ...(token === undefined ? {} : { nextToken: token }) })
    })

  apiOpts(filterOpts(audit.command('export'))).description('export events as JSON lines: the stored records verbatim (jsonl) or OCSF 1.x events (ocsf)')
    .addOption(new Option('--format <format>', 'jsonl or ocsf').choices(['jsonl', 'ocsf']).default('jsonl'))
    .option('--out <file>', 'write to a file (mode 0600) instead of stdout')
    .action(async (o: Filters & { format: string, out?: string }) => {
      const client = clientFor(o)
      const file = o.out === undefined ? undefined : createWriteStream(o.out, { flags: 'w', mode: 0o600 })
      const write = (s: string): void => { if (file === undefined) io.stdout(s); else file.write(s) }
      let token: string | undefined
      try {
        do {
          // envelope=json: the same lines, verbatim, inside JSON (the API client speaks JSON).
          const page = await client.call<{ lines: string[], nextToken?: string }>('GET', '/thingward/audit/export', { query: { ...filterQuery(o), format: o.format, maxResults: 10_000, nextToken: token, envelope: 'json' } })
          write(page.lines.map(l => `${l}\n`).join(''))
          token = page.nextToken
        } while (token !== undefined)
      } finally {
        if (file !== undefined) await new Promise<void>((done) => { file.end(done) })
      }
    })

  apiOpts(audit.command('head')).description('print the current head and last signed digest (save it outside the server: an anchor for verify)')
    .action(async (o: object) => { print(await clientFor(o).call('GET', '/thingward/audit/head')) })
  apiOpts(audit.command('public-keys')).description('print every audit signing public key, retired ones included')
    .action(async (o: object) => { print(await clientFor(o).call('GET', '/thingward/audit/public-keys')) })
  apiOpts(audit.command('sign')).description('sign a digest now')
    .action(async (o: object) => { print(await clientFor(o).call('POST', '/thingward/audit/digests')) })
  apiOpts(audit.command('rotate-key')).description('replace the audit signing key (the old one signs the hand-over)')
    .action(async (o: object) => { print(await clientFor(o).call('POST', '/thingward/audit/rotate-key')) })
  apiOpts(audit.command('prune')).description('delete records older than a time, down to a signed digest boundary (digests are kept)')
    .requiredOption('--before <time>', 'ISO 8601 or epoch ms')
    .action(async (o: { before: string }) => { print(await clientFor(o).call('POST', '/thingward/audit/prune', { body: { before: timeArg(o.before, 'before') } })) })

  audit.command('stream').description('deliver the log to a file, syslog over TLS (RFC 5424/5425) or an HTTPS webhook; the cursor is kept in the database, so a restart resumes where it stopped')
    .requiredOption('--sink <uri>', 'file:PATH, syslog+tls://HOST:PORT or https://URL (webhook secret: THINGWARD_AUDIT_WEBHOOK_SECRET)')
    .addOption(new Option('--format <format>', 'jsonl or ocsf').choices(['jsonl', 'ocsf']).default('jsonl'))
    .addOption(new Option('--data <dir>', 'data directory (default ./data or THINGWARD_DATA_DIR)'))
    .option('--once', 'deliver what is pending and exit')
    .option('--poll-ms <ms>', 'how often to look for new records', '1000')
    .option('--sink-ca <file>', 'CA certificates of the syslog collector or webhook (PEM)')
    .option('--sink-cert <file>', 'client certificate for the syslog collector (PEM)')
    .option('--sink-key <file>', 'client key for the syslog collector (PEM)')
    .option('--hostname <name>', 'syslog HOSTNAME field')
    .action(async (o: { sink: string, format: string, data?: string, once?: boolean, pollMs: string, sinkCa?: string, sinkCert?: string, sinkKey?: string, hostname?: string }) => {
      const pollMs = Number(o.pollMs)
      if (!Number.isInteger(pollMs) || pollMs < 10) throw new InvalidRequestError('--poll-ms must be an integer of at least 10', { field: 'poll-ms' })
      const { store, close } = openAuditStore(configFor({ data: o.data }))
      const streamer = new AuditStreamer({
        store, sink: createAuditSink(parseSink(o.sink, o, io.env)), format: o.format === 'ocsf' ? ExportFormat.Ocsf : ExportFormat.Jsonl,
        onError: (err) => { io.stderr(`thingward: audit stream: ${err instanceof Error ? err.message : String(err)}\n`) },
      })
      if (o.once === true) {
        try {
          const sent = await streamer.runOnce()
          io.stderr(`delivered ${sent.events} records and ${sent.digests} digests to ${o.sink}\n`)
        } finally {
          await streamer.stop()
          close()
        }
        return
      }
      streamer.start(timerScheduler, pollMs)
      io.onShutdown(async () => { await streamer.stop(); close() })
    })
}
