/**
 * The contract check: every response a test receives through the agent
 * helper is validated against the agent's OpenAPI document by openapi-backend
 * (status, JSON body and headers of the matching operation). A response that
 * breaks the document fails the test that received it.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { OpenAPIBackend, SetMatchType } from 'openapi-backend';
import { buildOpenApiDocument } from '../../core/http/openapi/openapi-document.js';
import { VERSION } from '../../core/kernel.js';

let api: Promise<OpenAPIBackend> | undefined;

function validator(): Promise<OpenAPIBackend> {
  api ??= (async () => {
    const document = buildOpenApiDocument(VERSION);
    // openapi-backend checks a definition against the OpenAPI 3.0 schema
    // only; the 3.1 document is checked by a 3.1 validator instead, and
    // openapi-backend does what it does for 3.1 too: match operations and
    // validate bodies and headers with Ajv.
    const checked = await new Validator().validate(document as never);
    if (!checked.valid) throw new ContractViolation(`the OpenAPI document is not valid OpenAPI 3.1: ${JSON.stringify(checked.errors)}`);
    // quick: validators are compiled per operation when first used (all at
    // once took seconds at the first request of every test file).
    const backend = new OpenAPIBackend({ definition: document as never, strict: true, validate: true, quick: true });
    await backend.init();
    return backend;
  })();
  return api;
}

/** Responses checked so far, by operationId (the contract test reports them). */
export const contractTally = new Map<string, number>();

export interface ObservedResponse {
  method: string;
  url: string;
  status: number;
  headers: Headers;
  body: unknown;
}

export class ContractViolation extends Error {
  override name = 'ContractViolation';
}

/**
 * Validates one response; returns the operationId it matched, or undefined
 * for a request no operation describes (an unknown route: its 404 is checked
 * against the error schema by the route tests themselves).
 */
export async function checkResponse(observed: ObservedResponse): Promise<string | undefined> {
  const backend = await validator();
  const url = new URL(observed.url);
  const method = observed.method.toLowerCase();
  if (method === 'head' || method === 'options') return undefined;
  const operation = backend.matchOperation({ method, path: url.pathname, headers: {}, query: Object.fromEntries(url.searchParams) });
  if (!operation?.operationId) return undefined;
  const where = `${observed.method} ${url.pathname}${url.search} -> ${observed.status} (operation ${operation.operationId})`;
  const documented = Object.keys(operation.responses ?? {});
  if (!documented.includes(String(observed.status)) && !documented.includes('default')) {
    throw new ContractViolation(`${where}: status ${observed.status} is not documented (documented: ${documented.join(', ')})`);
  }
  const type = observed.headers.get('content-type') ?? '';
  if (type.startsWith('application/json')) {
    const result = backend.validateResponse(observed.body, operation, observed.status);
    if (!result.valid) {
      throw new ContractViolation(`${where}: body does not match the document: ${JSON.stringify(result.errors)}; body: ${JSON.stringify(observed.body).slice(0, 2000)}`);
    }
  }
  const headers = Object.fromEntries(observed.headers.entries());
  const headerResult = backend.validateResponseHeaders(headers, operation, { statusCode: observed.status, setMatchType: SetMatchType.Any });
  // openapi-backend checks the headers present; a header the document marks
  // required must also be there.
  const response = (operation.responses?.[String(observed.status)] ?? operation.responses?.default) as { headers?: Record<string, { required?: boolean }> } | undefined;
  const missing = Object.entries(response?.headers ?? {})
    .filter(([name, header]) => header.required && !observed.headers.has(name))
    .map(([name]) => name);
  if (!headerResult.valid || missing.length > 0) {
    throw new ContractViolation(`${where}: headers do not match the document: ${JSON.stringify(headerResult.errors ?? [])} missing: ${missing.join(', ')}; headers: ${JSON.stringify(headers)}`);
  }
  contractTally.set(operation.operationId, (contractTally.get(operation.operationId) ?? 0) + 1);
  return operation.operationId;
}
