/** Public surface of the device gateway. */
export { Gateway, STRONG_CIPHERS } from './gateway.ts'
export type { GatewayOptions, GatewayTlsMaterial, ListenOptions } from './gateway.ts'
export type { GatewayMetricsSnapshot } from '../core/index.ts'
export type {
  CloseSessionOptions, ReauthorizeResult, ReservedPublish, ReservedTopicHandler, ServerMessage,
} from './broker.ts'
export type { GatewaySession } from './session.ts'
export { DEFAULT_LIMITS } from './limits.ts'
export type { GatewayLimits, OverflowPolicy } from './limits.ts'
export { ReasonCode, ConnackReturnCode } from './reason-codes.ts'
export { MemoryRetainedStore, MemorySessionStore } from './memory-stores.ts'
export * from './ports.ts'
export { parseTopicFilter, checkTopicName } from './topics.ts'
export {
  RegistryAuthenticator, PolicyAuthorizerFactory, certificateAttributes, compileDevicePolicies, toGatewayDecision,
} from './device-auth.ts'
export { tlsFailureCause } from './gateway.ts'
export { MAX_SHADOW_REQUESTS_IN_FLIGHT, SHADOW_TOPIC_PREFIX, shadowTopicHandler } from './shadow-topics.ts'
export type { ShadowTopicOptions } from './shadow-topics.ts'
export { PAYLOAD_SCHEMA_REASON, PAYLOAD_SCHEMA_REASON_STRING, payloadSchemaValidator } from './schemas.ts'
