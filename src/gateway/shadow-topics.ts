/**
 * The gateway's own handler for the reserved shadow topics (IoT DG `device-shadow-mqtt`): a device publishes to
 * `$aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}` and the answer comes back on the matching
 * `/accepted`, `/rejected`, `/delta` and `/documents` topics. Authorization is AWS's: the broker has already
 * checked iot:Publish on the request topic before calling this handler, and every answer is delivered only to
 * subscribers whose iot:Subscribe and iot:Receive allow it.
 */
import { ShadowError, ShadowErrorMessage, parseShadowRequestTopic } from '../shadow/index.ts'
import type { ShadowCaller, ShadowService } from '../shadow/index.ts'
import type { ReservedPublish, ReservedTopicHandler } from './broker.ts'

/** The prefix the handler owns. */
export const SHADOW_TOPIC_PREFIX = '$aws/things/'

/** IoT DG `device-shadow-error-messages` 429: "more than 10 in-flight requests on a single connection". */
export const MAX_SHADOW_REQUESTS_IN_FLIGHT = 10

/** Options for {@link shadowTopicHandler}. */
export interface ShadowTopicOptions {
  readonly maxInFlightPerClient?: number
  /** Unexpected failures (the service answers every expected one on /rejected). */
  readonly onError?: (err: unknown) => void
}

/**
 * Builds the reserved-topic handler for `$aws/things/` (register it with `gateway.handleReserved`). It never
 * blocks the broker: each request runs asynchronously; requests of one client are served in arrival order
 * because the shadow store serializes its units of work in the order they start. Topics under the prefix that
 * are not shadow requests (response topics, other services) are ignored.
 */
export function shadowTopicHandler (shadows: Pick<ShadowService, 'handleRequest' | 'reject'>, opts: ShadowTopicOptions = {}): ReservedTopicHandler {
  const max = opts.maxInFlightPerClient ?? MAX_SHADOW_REQUESTS_IN_FLIGHT
  const inFlight = new Map<string, number>()
  const onError = opts.onError ?? (() => {})
  return (m: ReservedPublish): void => {
    const request = parseShadowRequestTopic(m.topic)
    if (request === undefined) return
    const n = inFlight.get(m.clientId) ?? 0
    if (n >= max) {
      shadows.reject(request.target, request.operation, new ShadowError('ERR_SHADOW_THROTTLED', ShadowErrorMessage.TooManyRequests))
      return
    }
    inFlight.set(m.clientId, n + 1)
    const caller: ShadowCaller = { actor: m.principal?.id ?? `client/${m.clientId}`, via: 'mqtt' }
    shadows.handleRequest(request, m.payload, caller).catch(onError).finally(() => {
      const left = (inFlight.get(m.clientId) ?? 1) - 1
      if (left <= 0) inFlight.delete(m.clientId); else inFlight.set(m.clientId, left)
    })
  }
}
