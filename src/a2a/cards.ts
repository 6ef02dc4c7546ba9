import { createHash } from 'node:crypto';
import { type AgentCard, type AgentEntry, TASK_SEQUENCE_EXTENSION } from '@a2a-mesh/protocol';
import type { A2AVersion } from './errors.js';

/**
 * Agent Cards as the gateway serves them: the card an agent registered with `mesh/hello`, completed
 * to a valid A2A v1.0 card whose `supportedInterfaces` point at this node. A v0.3 request (no
 * `A2A-Version`) also gets the v0.3 fields (`url`, `preferredTransport`, `protocolVersion`), so both
 * generations of clients can pick an interface from the same document.
 */

type Obj = Record<string, unknown>;

/** The extension the gateway declares in every card. */
export const SEQUENCE_EXTENSION_DECLARATION = {
  uri: TASK_SEQUENCE_EXTENSION,
  description:
    'Every task event carries a per-task sequence (SSE id, and metadata under this URI when requested); ' +
    'SubscribeToTask with lastSequence (or Last-Event-ID) replays every event after it.',
  required: false,
};

/** The JSON-RPC endpoint of an agent at a node. */
export function agentEndpoint(baseUrl: string, agentId: string): string {
  return `${baseUrl}/agents/${encodeURIComponent(agentId)}/a2a`;
}

/** How callers authenticate to the gateway, declared in every agent card when the node requires it. */
export interface CardSecurity {
  /** `JWT` or `API key`: a hint for the bearer token's format. */
  bearerFormat: string;
  description: string;
}

/** The name of the scheme in `securitySchemes`. */
const SCHEME = 'meshBearer';

/** `securitySchemes` and the requirement to use it, in v1.0 (ProtoJSON) or v0.3 (OpenAPI) shape. */
function securityFields(security: CardSecurity, version: A2AVersion): Obj {
  if (version === '0.3') {
    return {
      securitySchemes: {
        [SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: security.bearerFormat,
          description: security.description,
        },
      },
      security: [{ [SCHEME]: [] }],
    };
  }
  return {
    securitySchemes: {
      [SCHEME]: {
        httpAuthSecurityScheme: {
          scheme: 'Bearer',
          bearerFormat: security.bearerFormat,
          description: security.description,
        },
      },
    },
    securityRequirements: [{ schemes: { [SCHEME]: { list: [] } } }],
  };
}

/** The card of a mesh agent at this node, in the requested version's shape. */
export function agentCard(
  entry: AgentEntry,
  baseUrl: string,
  version: A2AVersion,
  security?: CardSecurity,
): Obj {
  const card = entry.card as AgentCard & Obj;
  const url = agentEndpoint(baseUrl, entry.agentId);
  const own = (card.capabilities ?? {}) as Obj;
  const ownExtensions = Array.isArray(own.extensions) ? (own.extensions as Obj[]) : [];
  const {
    url: _url,
    preferredTransport: _pt,
    additionalInterfaces: _ai,
    protocolVersion: _pv,
    supportedInterfaces: _si,
    supportsAuthenticatedExtendedCard: _se,
    ...rest
  } = card;
  const out: Obj = {
    ...rest,
    name: card.name,
    description: card.description ?? '',
    version: card.version ?? '1.0.0',
    supportedInterfaces: [
      { url, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      { url, protocolBinding: 'JSONRPC', protocolVersion: '0.3' },
    ],
    capabilities: {
      ...own,
      streaming: true,
      pushNotifications: true,
      extendedAgentCard: own.extendedAgentCard === true,
      extensions: [
        ...ownExtensions.filter((e) => e.uri !== TASK_SEQUENCE_EXTENSION),
        SEQUENCE_EXTENSION_DECLARATION,
      ],
    },
    defaultInputModes: (card.defaultInputModes as string[] | undefined) ?? ['text/plain'],
    defaultOutputModes: (card.defaultOutputModes as string[] | undefined) ?? ['text/plain'],
    skills: card.skills.map((s) => ({ ...s, description: s.description ?? '', tags: s.tags ?? [] })),
  };
  // What the agent says about its own security is replaced by what the gateway enforces.
  delete out.securitySchemes;
  delete out.securityRequirements;
  delete out.security;
  delete out.allowedCallers;
  if (security) Object.assign(out, securityFields(security, version));
  if (version === '0.3') {
    Object.assign(out, {
      protocolVersion: '0.3.0',
      url,
      preferredTransport: 'JSONRPC',
      additionalInterfaces: [{ url, transport: 'JSONRPC' }],
      supportsAuthenticatedExtendedCard: own.extendedAgentCard === true,
    });
  }
  return out;
}

/** The node's own card: it is not an agent itself; its skills are those of every agent in the directory. */
export function nodeCard(nodeId: string, entries: readonly AgentEntry[], baseUrl: string): Obj {
  return {
    name: `a2a-mesh node ${nodeId}`,
    description:
      `A mesh node. Each skill is offered by a mesh agent, reachable as an A2A agent at ` +
      `${baseUrl}/agents/{agentId}/ (skill id: {agentId}/{skillId}).`,
    version: '1.0.0',
    supportedInterfaces: [],
    capabilities: { streaming: true, pushNotifications: true, extensions: [SEQUENCE_EXTENSION_DECLARATION] },
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills: entries.flatMap((e) =>
      e.card.skills.map((s) => ({
        ...s,
        id: `${e.agentId}/${s.id}`,
        description: s.description ?? '',
        tags: s.tags ?? [],
      })),
    ),
  };
}

/** A strong ETag of a JSON document. */
export function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}
