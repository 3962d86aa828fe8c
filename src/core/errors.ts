/**
 * The one append-only list of error codes (DESIGN.md §5). A code is `ERR_<MODULE>_<WHAT>`; never reuse or
 * rename one, since operators script against them. Each edge maps every code exactly once (see
 * src/http/errors.ts for HTTP statuses); adding a code without a mapping fails `tsc`.
 */
export const ERROR_CODES = [
  'ERR_INTERNAL',
  'ERR_CONFIG_INVALID',
  'ERR_STORAGE_CORRUPT',
  'ERR_STORAGE_MIGRATION',
  'ERR_KMS_MASTER_KEY_MISSING',
  'ERR_KMS_MASTER_KEY_INVALID',
  'ERR_KMS_KEY_NOT_FOUND',
  'ERR_KMS_KEY_DISABLED',
  'ERR_KMS_DECRYPT_FAILED',
  'ERR_KMS_CONTEXT_INVALID',
  'ERR_PKI_NOT_INITIALIZED',
  'ERR_PKI_CSR_INVALID',
  'ERR_PKI_KEY_WEAK',
  'ERR_PKI_CERT_INVALID',
  'ERR_PKI_CA_INVALID',
  'ERR_PKI_VERIFICATION_FAILED',
  'ERR_REGISTRY_NOT_FOUND',
  'ERR_REGISTRY_ALREADY_EXISTS',
  'ERR_REGISTRY_INVALID_REQUEST',
  'ERR_REGISTRY_VERSION_CONFLICT',
  'ERR_REGISTRY_VERSIONS_LIMIT',
  'ERR_REGISTRY_DELETE_CONFLICT',
  'ERR_REGISTRY_CERT_STATE',
  'ERR_REGISTRY_LIMIT_EXCEEDED',
  'ERR_POLICY_MALFORMED',
  'ERR_AUTH_MISSING',
  'ERR_AUTH_SIGNATURE_MISMATCH',
  'ERR_AUTH_UNKNOWN_KEY',
  'ERR_AUTH_REQUEST_EXPIRED',
  'ERR_AUTH_ACCESS_DENIED',
  'ERR_AUTH_KEY_INACTIVE',
  'ERR_AUDIT_CHAIN_BROKEN',
  'ERR_PKI_INVALID_ARGUMENT',
  'ERR_KMS_KEY_FILE_INSECURE',
  'ERR_GATEWAY_TOPIC_INVALID',
  'ERR_GATEWAY_STATE', 'ERR_GATEWAY_LIMITS_INVALID',
  'ERR_AUDIT_OVERLOADED', 'ERR_AUDIT_SINK_FAILED',
  'ERR_AUTH_TOKEN_EXPIRED', 'ERR_AUTH_INVALID_TOKEN', 'ERR_AUTH_LOCKED_OUT', 'ERR_IAM_NO_SUCH_ENTITY', 'ERR_IAM_ENTITY_EXISTS', 'ERR_IAM_LIMIT_EXCEEDED', 'ERR_IAM_DELETE_CONFLICT', 'ERR_IAM_PASSWORD_POLICY', 'ERR_IAM_INVALID_INPUT', 'ERR_IAM_UNMODIFIABLE',
  'ERR_SHADOW_INVALID_REQUEST', 'ERR_SHADOW_NOT_FOUND', 'ERR_SHADOW_VERSION_CONFLICT', 'ERR_SHADOW_STALE', 'ERR_SHADOW_TOO_LARGE', 'ERR_SHADOW_UNSUPPORTED_ENCODING', 'ERR_SHADOW_THROTTLED', 'ERR_DATA_PLANE_UNAVAILABLE', 'ERR_DATA_PLANE_FORBIDDEN', 'ERR_SCHEMA_INVALID', 'ERR_SCHEMA_PAYLOAD_REJECTED',
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

/** Base of every error that crosses a module boundary. `message` is fixed text: no identifiers, no secrets. */
export class AppError extends Error {
  readonly code: ErrorCode
  /** Non-secret identifiers and facts for logs and API fields (resource type, name, JSON path…). */
  readonly details: Readonly<Record<string, string | number>>
  constructor (code: ErrorCode, message: string, details: Record<string, string | number> = {}, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    this.details = Object.freeze({ ...details })
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError

/** "X not found": AWS ResourceNotFoundException. */
export class NotFoundError extends AppError {
  constructor (resourceType: string, resourceId: string) {
    super('ERR_REGISTRY_NOT_FOUND', `${resourceType} not found`, { resourceType, resourceId })
  }
}

/** AWS ResourceAlreadyExistsException. */
export class AlreadyExistsError extends AppError {
  constructor (resourceType: string, resourceId: string, resourceArn = '') {
    super('ERR_REGISTRY_ALREADY_EXISTS', `${resourceType} already exists`, { resourceType, resourceId, resourceArn })
  }
}

/** AWS InvalidRequestException. `message` must be fixed text naming the rule; the offending field goes in details. */
export class InvalidRequestError extends AppError {
  constructor (message: string, details: Record<string, string | number> = {}) {
    super('ERR_REGISTRY_INVALID_REQUEST', message, details)
  }
}
