import type { ErrorCode } from '../core/index.ts'

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
}
