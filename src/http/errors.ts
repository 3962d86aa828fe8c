import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../core/index.ts'
import type { ErrorCode } from '../core/index.ts'
import { SHADOW_ERROR_STATUS } from '../shadow/index.ts'
import type { ShadowErrorCode } from '../shadow/index.ts'

/** A shadow error's HTTP mapping: the status is the shadow module's own (the same number goes on MQTT /rejected). */
const shadow = (code: ShadowErrorCode, type: string): { status: number, type: string } => ({ status: SHADOW_ERROR_STATUS[code], type })

/**
 * Every error code's HTTP status and AWS error type, in one place (DESIGN.md §5). A new code without an entry
 * fails `tsc`. AWS SDKs read the type from the `x-amzn-ErrorType` header (botocore RestJSONParser and
 * aws-sdk-js-v3 loadRestJsonErrorCode), so the names must be AWS's exact exception names.
 */
export const HTTP_ERRORS: Record<ErrorCode, { status: number, type: string }> = {
  ERR_INTERNAL: { status: 500, type: 'InternalFailureException' },
  ERR_CONFIG_INVALID: { status: 500, type: 'InternalFailureException' },
  ERR_STORAGE_CORRUPT: { status: 500, type: 'InternalFailureException' },
  ERR_STORAGE_MIGRATION: { status: 500, type: 'InternalFailureException' },
  ERR_KMS_MASTER_KEY_MISSING: { status: 500, type: 'InternalFailureException' },
  ERR_KMS_MASTER_KEY_INVALID: { status: 500, type: 'InternalFailureException' },
  ERR_KMS_KEY_NOT_FOUND: { status: 404, type: 'ResourceNotFoundException' },
  ERR_KMS_KEY_DISABLED: { status: 409, type: 'InvalidStateTransitionException' },
  ERR_KMS_DECRYPT_FAILED: { status: 500, type: 'InternalFailureException' },
  ERR_KMS_CONTEXT_INVALID: { status: 400, type: 'InvalidRequestException' },
  ERR_PKI_NOT_INITIALIZED: { status: 503, type: 'ServiceUnavailableException' },
  ERR_PKI_CSR_INVALID: { status: 400, type: 'InvalidRequestException' },
  ERR_PKI_KEY_WEAK: { status: 400, type: 'InvalidRequestException' },
  ERR_PKI_CERT_INVALID: { status: 400, type: 'CertificateValidationException' },
  ERR_PKI_CA_INVALID: { status: 400, type: 'CertificateValidationException' },
  ERR_PKI_VERIFICATION_FAILED: { status: 400, type: 'CertificateValidationException' },
  ERR_REGISTRY_NOT_FOUND: { status: 404, type: 'ResourceNotFoundException' },
  ERR_REGISTRY_ALREADY_EXISTS: { status: 409, type: 'ResourceAlreadyExistsException' },
  ERR_REGISTRY_INVALID_REQUEST: { status: 400, type: 'InvalidRequestException' },
  ERR_REGISTRY_VERSION_CONFLICT: { status: 409, type: 'VersionConflictException' },
  ERR_REGISTRY_VERSIONS_LIMIT: { status: 409, type: 'VersionsLimitExceededException' },
  ERR_REGISTRY_DELETE_CONFLICT: { status: 409, type: 'DeleteConflictException' },
  ERR_REGISTRY_CERT_STATE: { status: 406, type: 'CertificateStateException' },
  ERR_REGISTRY_LIMIT_EXCEEDED: { status: 410, type: 'LimitExceededException' },
  ERR_POLICY_MALFORMED: { status: 400, type: 'MalformedPolicyException' },
  ERR_AUTH_MISSING: { status: 403, type: 'MissingAuthenticationTokenException' },
  ERR_AUTH_SIGNATURE_MISMATCH: { status: 403, type: 'SignatureDoesNotMatchException' },
  ERR_AUTH_UNKNOWN_KEY: { status: 403, type: 'UnrecognizedClientException' },
  ERR_AUTH_REQUEST_EXPIRED: { status: 403, type: 'InvalidSignatureException' },
  ERR_AUTH_ACCESS_DENIED: { status: 403, type: 'AccessDeniedException' },
  ERR_AUTH_KEY_INACTIVE: { status: 403, type: 'UnrecognizedClientException' },
  ERR_AUDIT_CHAIN_BROKEN: { status: 500, type: 'InternalFailureException' },
  ERR_PKI_INVALID_ARGUMENT: { status: 400, type: 'InvalidRequestException' },
  ERR_KMS_KEY_FILE_INSECURE: { status: 500, type: 'InternalFailureException' },
  ERR_GATEWAY_TOPIC_INVALID: { status: 400, type: 'InvalidRequestException' },
  ERR_GATEWAY_STATE: { status: 409, type: 'InvalidStateTransitionException' },
  ERR_GATEWAY_LIMITS_INVALID: { status: 500, type: 'InternalFailureException' },
  ERR_AUDIT_OVERLOADED: { status: 503, type: 'ServiceUnavailableException' }, ERR_AUDIT_SINK_FAILED: { status: 502, type: 'InternalFailureException' },
  ERR_AUTH_TOKEN_EXPIRED: { status: 403, type: 'ExpiredTokenException' }, ERR_AUTH_INVALID_TOKEN: { status: 403, type: 'UnrecognizedClientException' }, ERR_AUTH_LOCKED_OUT: { status: 429, type: 'ThrottlingException' }, ERR_IAM_NO_SUCH_ENTITY: { status: 404, type: 'NoSuchEntityException' }, ERR_IAM_ENTITY_EXISTS: { status: 409, type: 'EntityAlreadyExistsException' }, ERR_IAM_LIMIT_EXCEEDED: { status: 409, type: 'LimitExceededException' }, ERR_IAM_DELETE_CONFLICT: { status: 409, type: 'DeleteConflictException' }, ERR_IAM_PASSWORD_POLICY: { status: 400, type: 'PasswordPolicyViolationException' }, ERR_IAM_INVALID_INPUT: { status: 400, type: 'InvalidInputException' }, ERR_IAM_UNMODIFIABLE: { status: 409, type: 'UnmodifiableEntityException' },
  // Data plane (issue #6): iot-data exception names, statuses from IoT DG `device-shadow-error-messages`.
  ERR_SHADOW_INVALID_REQUEST: shadow('ERR_SHADOW_INVALID_REQUEST', 'InvalidRequestException'), ERR_SHADOW_NOT_FOUND: shadow('ERR_SHADOW_NOT_FOUND', 'ResourceNotFoundException'), ERR_SHADOW_VERSION_CONFLICT: shadow('ERR_SHADOW_VERSION_CONFLICT', 'ConflictException'), ERR_SHADOW_STALE: shadow('ERR_SHADOW_STALE', 'PreconditionFailedException'), ERR_SHADOW_TOO_LARGE: shadow('ERR_SHADOW_TOO_LARGE', 'RequestEntityTooLargeException'), ERR_SHADOW_UNSUPPORTED_ENCODING: shadow('ERR_SHADOW_UNSUPPORTED_ENCODING', 'UnsupportedDocumentEncodingException'), ERR_SHADOW_THROTTLED: shadow('ERR_SHADOW_THROTTLED', 'ThrottlingException'), ERR_DATA_PLANE_UNAVAILABLE: { status: 503, type: 'ServiceUnavailableException' }, ERR_DATA_PLANE_FORBIDDEN: { status: 403, type: 'ForbiddenException' }, ERR_SCHEMA_INVALID: { status: 400, type: 'InvalidRequestException' }, ERR_SCHEMA_PAYLOAD_REJECTED: { status: 400, type: 'InvalidRequestException' },
}

/** An AppError as AWS's JSON error shape: status and `x-amzn-ErrorType` from the table, plus the fields SDKs read. */
export function sendError (reply: FastifyReply, err: AppError): FastifyReply {
  const { status, type } = HTTP_ERRORS[err.code]
  const body: Record<string, unknown> = { message: err.message, code: err.code }
  if (err.code === 'ERR_REGISTRY_ALREADY_EXISTS') {
    body.resourceId = err.details.resourceId
    if (err.details.resourceArn !== '') body.resourceArn = err.details.resourceArn
  }
  if (err.code === 'ERR_POLICY_MALFORMED' && err.details.path !== undefined) body.path = err.details.path
  if (err.code === 'ERR_REGISTRY_INVALID_REQUEST' && err.details.field !== undefined) body.field = err.details.field
  return reply.code(status).header('x-amzn-ErrorType', type).send(body)
}

/**
 * The error handler of every JSON API server (the operator API and the device data plane): AppErrors through
 * the table; Fastify's own client errors (bad body, too large, unsupported media type) as 400/413; anything
 * else is logged and answered with a fixed 500, never its message.
 */
export function jsonErrorHandler (err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof AppError) {
    if (HTTP_ERRORS[err.code].status >= 500) req.log.error({ err, code: err.code }, 'request failed')
    return sendError(reply, err)
  }
  if (err instanceof Error && 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
    const type = err.statusCode === 413 ? 'RequestEntityTooLargeException' : err.statusCode === 415 ? 'UnsupportedDocumentEncodingException' : 'InvalidRequestException'
    return reply.code(err.statusCode === 413 ? 413 : 400).header('x-amzn-ErrorType', type).send({ message: err.message, code: 'ERR_REGISTRY_INVALID_REQUEST' })
  }
  req.log.error({ err }, 'unhandled error')
  return reply.code(500).header('x-amzn-ErrorType', 'InternalFailureException').send({ message: 'internal error', code: 'ERR_INTERNAL' })
}

/** 404 for a path no route serves (AWS's UnknownOperationException). */
export function unknownOperation (_req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(404).header('x-amzn-ErrorType', 'UnknownOperationException').send({ message: 'unknown operation', code: 'ERR_REGISTRY_NOT_FOUND' })
}
