export * from './chain.ts'
export type * from './ports.ts'
