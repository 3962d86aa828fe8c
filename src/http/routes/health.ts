/**
 * Liveness, readiness and Prometheus metrics. `/healthz` says the process serves HTTP; `/readyz` says its
 * dependencies answer (503 otherwise); `/metrics` is the Prometheus text format. All three are unauthenticated
 * (PUBLIC_PREFIXES) so probes and scrapers need no credentials: they expose counts with bounded labels only —
 * never a client id, thing name, topic or payload.
 */
import type { FastifyPluginAsync } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { GatewayMetricsSnapshot } from '../../core/index.ts'
import type { PayloadValidationStats, ShadowMetricsSnapshot } from '../../shadow/index.ts'

/** Where /metrics reads from; each source is optional (the gateway may not run in this process). */
export interface MetricsSources {
  readonly gateway?: () => GatewayMetricsSnapshot | undefined
  /** Shadow operation counters keyed `{operation}:{outcome}`. */
  readonly shadows?: () => ShadowMetricsSnapshot
  readonly payloadValidation?: () => PayloadValidationStats
  /** Audit events queued and not yet committed. */
  readonly auditQueueDepth?: () => number
}

/** What /readyz reports. */
export interface Readiness {
  readonly ready: boolean
  /** Per dependency: `ok`, or a short non-secret problem. */
  readonly checks: Readonly<Record<string, string>>
}

const PROTOCOL_LABEL = { 4: '3.1.1', 5: '5.0' } as const

/** Splits a `{first}:{rest}` counter key (gateway denials, shadow operations) into its two label values. */
function splitKey (k: string): [string, string] {
  const i = k.indexOf(':')
  return i < 0 ? [k, ''] : [k.slice(0, i), k.slice(i + 1)]
}

/**
 * The platform's Prometheus registry: gauges and counters read from the sources at scrape time, plus the
 * revoke-to-disconnect histogram observed by the composition root.
 */
export class PlatformMetrics {
  readonly registry = new Registry()
  #sources: MetricsSources = {}
  readonly #revoke: Histogram

  constructor (opts: { defaultMetrics?: boolean } = {}) {
    const r = this.registry
    const src = (): MetricsSources => this.#sources
    const gw = (): GatewayMetricsSnapshot | undefined => src().gateway?.()
    const counter = (name: string, help: string, read: (g: GatewayMetricsSnapshot) => number): void => {
      // The gateway keeps monotonic totals; each scrape republishes them (reset, then inc by the total).
      const c: Counter = new Counter({ name, help, registers: [r], collect () { const g = gw(); c.reset(); if (g !== undefined) c.inc(read(g)) } })
    }
    const gauge = (name: string, help: string, read: () => number | undefined): void => {
      const g: Gauge = new Gauge({ name, help, registers: [r], collect () { const v = read(); g.set(v ?? 0) } })
    }
    const labeled = (name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>, kind: 'counter' | 'gauge'): void => {
      if (kind === 'counter') {
        const c: Counter = new Counter({ name, help, labelNames, registers: [r], collect () { c.reset(); for (const [l, v] of read()) c.inc(l, v) } })
      } else {
        const g: Gauge = new Gauge({ name, help, labelNames, registers: [r], collect () { g.reset(); for (const [l, v] of read()) g.set(l, v) } })
      }
    }

    labeled('thingward_mqtt_connections', 'Live MQTT connections by protocol version.', ['protocol'], () => {
      const g = gw()
      return g === undefined ? [] : ([4, 5] as const).map(v => [{ protocol: PROTOCOL_LABEL[v] }, g.connectionsByProtocol[v]])
    }, 'gauge')
    gauge('thingward_mqtt_sessions', 'MQTT sessions, connected and persistent offline.', () => gw()?.sessions)
    gauge('thingward_mqtt_retained_messages', 'Retained messages held.', () => gw()?.retainedMessages)
    counter('thingward_mqtt_connections_accepted_total', 'Connections accepted (CONNACK success).', g => g.connectionsAccepted)
    counter('thingward_mqtt_connections_rejected_total', 'Connections refused (TLS, authentication, authorization, limits).', g => g.connectionsRejected)
    counter('thingward_mqtt_messages_in_total', 'PUBLISH packets received from clients.', g => g.messagesIn)
    counter('thingward_mqtt_messages_out_total', 'PUBLISH packets sent to clients.', g => g.messagesOut)
    counter('thingward_mqtt_messages_dropped_total', 'Messages dropped (QoS 0 under backpressure, full queues, expired).', g => g.messagesDropped)
    counter('thingward_mqtt_bytes_in_total', 'Bytes received from MQTT clients.', g => g.bytesIn)
    counter('thingward_mqtt_bytes_out_total', 'Bytes sent to MQTT clients.', g => g.bytesOut)
    counter('thingward_mqtt_protocol_errors_total', 'Connections closed for a protocol violation.', g => g.protocolErrors)
    counter('thingward_mqtt_limit_hits_total', 'Limits hit (packet size, rates, quotas, queue lengths).', g => g.limitsExceeded)
    labeled('thingward_mqtt_denials_total', 'Authorization and payload denials by action and reason.', ['action', 'reason'], () => {
      const g = gw()
      if (g === undefined) return []
      return Object.entries(g.denials).map(([k, v]) => {
        const [action, reason] = splitKey(k)
        return [{ action, reason }, v]
      })
    }, 'counter')
    labeled('thingward_tls_handshake_failures_total', 'Failed TLS handshakes on the MQTT listener by cause.', ['cause'], () => {
      const g = gw()
      return g === undefined ? [] : Object.entries(g.tlsHandshakeFailuresByCause).map(([cause, v]) => [{ cause }, v])
    }, 'counter')
    labeled('thingward_shadow_operations_total', 'Shadow operations by operation and outcome (accepted or the HTTP status).', ['operation', 'outcome'], () =>
      Object.entries(src().shadows?.() ?? {}).map(([k, v]) => {
        const [operation, outcome] = splitKey(k)
        return [{ operation, outcome }, v]
      }), 'counter')
    labeled('thingward_payload_validations_total', 'Payloads checked against payload schemas, by result.', ['result'], () => {
      const s = src().payloadValidation?.()
      return s === undefined ? [] : [[{ result: 'accepted' }, s.validations - s.failures], [{ result: 'refused' }, s.failures]]
    }, 'counter')
    const vs: Counter = new Counter({
      name: 'thingward_payload_validation_seconds_total', help: 'Time spent parsing and validating payloads against schemas.', registers: [r],
      collect () { vs.reset(); vs.inc(src().payloadValidation?.().seconds ?? 0) },
    })
    gauge('thingward_payload_schemas', 'Payload schemas loaded.', () => src().payloadValidation?.().schemas)
    gauge('thingward_audit_queue_depth', 'Audit events queued and not yet committed.', () => src().auditQueueDepth?.())
    this.#revoke = new Histogram({
      name: 'thingward_revoke_to_disconnect_seconds',
      help: 'From a committed certificate revocation (or deactivation) to its live sessions being closed.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [r],
    })
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: r, prefix: 'thingward_process_' })
  }

  /** Adds or replaces metric sources (the gateway attaches itself when it starts). */
  setSources (sources: MetricsSources): void { this.#sources = { ...this.#sources, ...sources } }

  /** Records one revocation's latency until its sessions were closed. */
  observeRevokeToDisconnect (seconds: number): void { this.#revoke.observe(seconds) }

  /** The Prometheus text exposition. */
  async render (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

/** `/healthz`, `/readyz` and `/metrics`. */
export const healthRoutes: FastifyPluginAsync<{ metrics?: PlatformMetrics, ready?: () => Promise<Readiness> }> = async (app, opts) => {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_req, reply) => {
    const r = opts.ready === undefined ? { ready: true, checks: {} } : await opts.ready()
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not-ready', checks: r.checks })
  })

  const metrics = opts.metrics
  if (metrics !== undefined) {
    app.get('/metrics', async (_req, reply) => {
      const { contentType, body } = await metrics.render()
      return reply.type(contentType).send(body)
    })
  }
}
