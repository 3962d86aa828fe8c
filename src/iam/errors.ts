import { AppError } from '../core/index.ts'

/** IAM NoSuchEntity: the message names the kind of entity; the entity itself goes in the details (DESIGN.md §5). */
export const noSuchEntity = (type: string, name: string): AppError =>
  new AppError('ERR_IAM_NO_SUCH_ENTITY', `the ${type} does not exist`, { resourceType: type, resourceId: name })

/** IAM EntityAlreadyExists. */
export const entityExists = (type: string, name: string): AppError =>
  new AppError('ERR_IAM_ENTITY_EXISTS', `the ${type} already exists`, { resourceType: type, resourceId: name })

/** IAM UnmodifiableEntity: built-in roles and policies are code. */
export const unmodifiable = (type: string, name: string): AppError =>
  new AppError('ERR_IAM_UNMODIFIABLE', `built-in ${type}s cannot be changed or deleted`, { resourceType: type, resourceId: name })
