/** Registry records. Times are epoch milliseconds; the HTTP edge converts to AWS's epoch seconds. */

export const CertificateStatus = {
  Active: 'ACTIVE',
  Inactive: 'INACTIVE',
  Revoked: 'REVOKED',
  PendingTransfer: 'PENDING_TRANSFER',
  RegisterInactive: 'REGISTER_INACTIVE',
  PendingActivation: 'PENDING_ACTIVATION',
} as const
export type CertificateStatus = (typeof CertificateStatus)[keyof typeof CertificateStatus]
export const CERTIFICATE_STATUSES: readonly CertificateStatus[] = Object.values(CertificateStatus)

export const CaStatus = { Active: 'ACTIVE', Inactive: 'INACTIVE' } as const
export type CaStatus = (typeof CaStatus)[keyof typeof CaStatus]

export type CertificateMode = 'DEFAULT' | 'SNI_ONLY'
export type ThingPrincipalType = 'EXCLUSIVE_THING' | 'NON_EXCLUSIVE_THING'

export interface Thing {
  readonly name: string
  readonly id: string
  readonly typeName: string | undefined
  readonly attributes: Readonly<Record<string, string>>
  readonly version: number
  readonly createdMs: number
  readonly updatedMs: number
}

export interface ThingType {
  readonly name: string
  readonly id: string
  readonly description: string | undefined
  readonly searchableAttributes: readonly string[]
  readonly deprecated: boolean
  readonly deprecationMs: number | undefined
  readonly createdMs: number
}

export interface ThingGroup {
  readonly name: string
  readonly id: string
  readonly parentName: string | undefined
  readonly description: string | undefined
  readonly attributes: Readonly<Record<string, string>>
  readonly version: number
  readonly createdMs: number
}

export interface Certificate {
  readonly id: string
  readonly pem: string
  /** Id of the registered CA certificate that issued it; undefined for RegisterCertificateWithoutCA. */
  readonly caId: string | undefined
  readonly serialHex: string
  readonly status: CertificateStatus
  readonly mode: CertificateMode
  readonly notBeforeMs: number
  readonly notAfterMs: number
  readonly revokedMs: number | undefined
  /** RFC 5280 §5.3.1 CRLReason. */
  readonly revocationReason: number | undefined
  readonly createdMs: number
  readonly updatedMs: number
  readonly generation: number
}

export interface CaCertificate {
  readonly id: string
  readonly pem: string
  readonly subject: string
  readonly status: CaStatus
  readonly autoRegistration: 'ENABLE' | 'DISABLE'
  readonly mode: CertificateMode
  /** true for Thingward's own root and issuing CA, whose private keys we hold (sealed by the keyring). */
  readonly own: boolean
  readonly sealedKey: Buffer | undefined
  readonly notBeforeMs: number
  readonly notAfterMs: number
  readonly createdMs: number
  readonly updatedMs: number
  readonly generation: number
}

export interface Policy {
  readonly name: string
  readonly defaultVersion: number
  readonly nextVersion: number
  readonly createdMs: number
  readonly updatedMs: number
  readonly generation: number
}

export interface PolicyVersion {
  readonly policyName: string
  readonly version: number
  readonly document: string
  readonly createdMs: number
}

export interface ThingPrincipal {
  readonly thingName: string
  readonly principal: string
  readonly type: ThingPrincipalType
  readonly createdMs: number
}

/** A page of results plus the opaque token for the next page (absent on the last page). */
export interface Page<T> { readonly items: T[], readonly nextToken: string | undefined }
