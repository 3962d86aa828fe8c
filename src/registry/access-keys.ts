/**
 * Access keys moved to the IAM module (issue #5: managed keys with rotation, last use and an owner that is an
 * IAM user). Re-exported here so existing imports keep compiling.
 */
export { AccessKeyService, MAX_ACCESS_KEYS_PER_USER } from '../iam/index.ts'
export type { AccessKeyMetadata } from '../iam/index.ts'
