import type { ValidateFunction } from 'ajv';

/**
 * Config validators compiled ahead of time, by schema (see core/config.ts usePrecompiledValidators).
 * Empty here: run from source, validators compile on first use. The bundle of `stk`
 * (hack/build-cli.mjs) replaces this module with ajv's standalone code for the CLI's config.
 */
export const precompiledValidators: Readonly<Record<string, ValidateFunction>> = {};
