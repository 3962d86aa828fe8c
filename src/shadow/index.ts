/**
 * Device shadows (issue #6): the pure document core (merge, delta, metadata timestamps, versions, limits, AWS's
 * error texts), the ShadowService with its ports, and payload schemas for the data plane (JSON Schema through Ajv,
 * compiled once per schema). Imports only `core`, the audit module's types and Ajv; performs no I/O.
 */
export {
  DEFAULT_SHADOW_LIMITS, applyUpdate, checkClientToken, checkFreshness, computeDelta, decodeJson, deleteDocument,
  errorDocument, getDocument, isJsonObject, isShadowDocument, jsonEqual, parseSimpleRequest, parseUpdateRequest,
  reportedAges, stateBytes,
} from './document.ts'
export type { JsonObject, JsonValue, ShadowDocument, ShadowLimits, UpdateOutcome, UpdateRequest } from './document.ts'
export { SHADOW_ERROR_STATUS, ShadowError, ShadowErrorMessage, invalidRequest } from './errors.ts'
export type { ShadowErrorCode } from './errors.ts'
export { SHADOW_NAME_RE, THING_NAME_RE, ShadowOperation, parseShadowRequestTopic, shadowArn, shadowTopicPrefix } from './topics.ts'
export type { ShadowTarget, ShadowTopicRequest } from './topics.ts'
export { ShadowService, checkTarget, wireError } from './service.ts'
export type { NamedShadowPage, ShadowCaller, ShadowMetricsSnapshot, ShadowServiceDeps } from './service.ts'
export {
  MAX_SCHEMAS, MAX_SCHEMA_BYTES, PAYLOAD_ACCEPTED, PAYLOAD_SCHEMA_NAME_RE, PayloadSchemaRegistry, PayloadSchemaService,
  describeRejection, topicFilterProblem,
} from './payload-schemas.ts'
export type {
  PayloadAccepted, PayloadRejected, PayloadSchemaServiceDeps, PayloadSchemaView, PayloadValidationStats, PayloadVerdict,
} from './payload-schemas.ts'
export type {
  PayloadSchemaStorage, PayloadSchemaStore, ShadowCipher, ShadowPublisher, ShadowStorage, ShadowStore, ShadowUnit,
  StoredPayloadSchema, StoredShadow,
} from './ports.ts'
