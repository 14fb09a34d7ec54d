import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An in-process DigitalOcean API (v2) for tests, faithful to the published API for the parts
 * Santokit uses: droplets (create 202 with status `new` that turns `active` later, the public
 * IPv4 appearing only then; list by `tag_name` with `page`/`per_page` and `links.pages`; get;
 * delete 204 then 404), droplet actions (shutdown, power_off, power_on, resize, with `locked`
 * while they run), actions, SSH keys (paginated, 10 list requests a minute), tags, the error body
 * `{id, message, request_id}`, `ratelimit-*` headers, and non-unique droplet names.
 *
 * Tests script faults (`fail`), move time along (`activate`, `completeActions`) and assert on the
 * request log. Everything is deterministic: ids, addresses, request ids and timestamps count up.
 */

export interface DoSimulatorOptions {
  /** the one token accepted; default a fixed `dop_v1_…` test token */
  readonly token?: string;
  /** a new droplet is reported `new` this many times (list or get), then `active`; default 2 */
  readonly activateAfterPolls?: number;
  /** an action is reported `in-progress` this many times, then completes; default 1 */
  readonly completeActionsAfterPolls?: number;
  /** requests per hour in `ratelimit-limit`; default 5000 */
  readonly rateLimit?: number;
  /** GET /v2/account/keys requests allowed per minute; default 10 (DigitalOcean's limit) */
  readonly sshKeyListLimitPerMinute?: number;
  /**
   * The public IPv4 a droplet gets when it turns active; default `203.0.113.<n>` (TEST-NET-3).
   * End-to-end tests map droplets onto loopback addresses where a test sshd listens.
   */
  readonly publicIPv4?: (droplet: { readonly id: number; readonly name: string }) => string;
  /**
   * Strict mode, as DigitalOcean behaves on a bad day. Every `serverErrorEvery`-th request (counting
   * authorized ones) answers 500 and takes no effect; after every `rateLimitBurst.every` requests the
   * next `length` answer 429 with `retry-after`; and while a `retry-after` it announced is running,
   * every request answers 429 again (recorded with `duringRetryAfter`), as DigitalOcean does to a
   * client that ignores it.
   */
  readonly serverErrorEvery?: number;
  readonly rateLimitBurst?: { readonly every: number; readonly length: number; readonly retryAfterSeconds: number };
  /** the clock retry-after windows are measured on (epoch ms); default Date.now */
  readonly now?: () => number;
}

export interface RecordedRequest {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  /** the query string as given */
  readonly search: string;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly authorized: boolean;
  status: number;
  /** set when the request came while a retry-after the simulator announced was still running */
  duringRetryAfter?: true;
}

export interface Fault {
  readonly method?: string;
  /** exact path, or a RegExp tested against the path */
  readonly path?: string | RegExp;
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** how many matching requests fail; default 1 */
  readonly times?: number;
  /** the request takes effect (e.g. the droplet is created) and only then is the fault answered */
  readonly afterEffect?: boolean;
}

export interface SimNetwork {
  ip_address: string;
  netmask: string;
  gateway: string;
  type: 'public' | 'private';
}

export interface SimDroplet {
  id: number;
  name: string;
  memory: number;
  vcpus: number;
  disk: number;
  locked: boolean;
  status: 'new' | 'active' | 'off' | 'archive';
  kernel: null;
  created_at: string;
  features: string[];
  backup_ids: number[];
  next_backup_window: null;
  snapshot_ids: number[];
  image: SimImage;
  volume_ids: string[];
  size: SimSize;
  size_slug: string;
  networks: { v4: SimNetwork[]; v6: unknown[] };
  region: SimRegion;
  tags: string[];
  vpc_uuid: string;
}

interface SimImage {
  id: number;
  name: string;
  distribution: string;
  slug: string | null;
  public: boolean;
  regions: string[];
  created_at: string;
  min_disk_size: number;
  type: string;
  size_gigabytes: number;
  description: string;
  tags: string[];
  status: string;
}

interface SimSize {
  slug: string;
  memory: number;
  vcpus: number;
  disk: number;
  transfer: number;
  price_monthly: number;
  price_hourly: number;
  regions: string[];
  available: boolean;
  description: string;
}

interface SimRegion {
  name: string;
  slug: string;
  features: string[];
  available: boolean;
  sizes: string[];
}

export interface SimSshKey {
  id: number;
  fingerprint: string;
  public_key: string;
  name: string;
}

export interface SimAction {
  id: number;
  status: 'in-progress' | 'completed' | 'errored';
  type: string;
  started_at: string;
  completed_at: string | null;
  resource_id: number;
  resource_type: 'droplet';
  region: SimRegion;
  region_slug: string;
}

interface ActionState {
  action: SimAction;
  polls: number;
  apply: () => void;
  errorOnComplete: boolean;
}

export interface DoSimulator {
  /** base URL (origin) to give the client */
  readonly url: string;
  readonly token: string;
  /** every request, in arrival order */
  readonly requests: readonly RecordedRequest[];
  /** requests whose method matches and whose path equals `path` (or matches the RegExp) */
  requestsTo(method: string, path: string | RegExp): RecordedRequest[];
  clearRequests(): void;
  /** all droplets, by id */
  droplets(): SimDroplet[];
  droplet(id: number | string): SimDroplet | undefined;
  /** adds a droplet as if created earlier (active unless said otherwise) */
  seedDroplet(input: { name: string; region?: string; size?: string; image?: string; tags?: readonly string[]; status?: 'new' | 'active' | 'off' }): SimDroplet;
  /** adds an SSH key to the account */
  seedSshKey(name: string, publicKey: string): SimSshKey;
  /** turns `new` droplets active now (one, or all) */
  activate(id?: number | string): void;
  /** completes running actions now */
  completeActions(): void;
  /** the next action started on a droplet completes as `errored` */
  failNextAction(type: string): void;
  /** scripts a fault for the next matching request(s) */
  fail(fault: Fault): void;
  /**
   * Runs `hook` once, for the next matching request, after the request took effect and before its
   * answer is sent (e.g. to kill the client right after a create call, or to look at the world
   * at the moment a 404 is about to be answered).
   */
  beforeReply(match: { readonly method?: string; readonly path?: string | RegExp; readonly status?: number }, hook: (request: RecordedRequest) => Promise<void> | void): void;
  close(): Promise<void>;
}

/** A token in DigitalOcean's format, so redaction is tested against the real shape. */
export const SIMULATOR_TOKEN = `dop_v1_${'5a'.repeat(32)}`;

const REGIONS: Record<string, string> = {
  nyc1: 'New York 1',
  nyc3: 'New York 3',
  ams3: 'Amsterdam 3',
  fra1: 'Frankfurt 1',
  lon1: 'London 1',
  sfo3: 'San Francisco 3',
  sgp1: 'Singapore 1',
};

const SIZES: Record<string, { memory: number; vcpus: number; disk: number; transfer: number; price: number }> = {
  's-1vcpu-1gb': { memory: 1024, vcpus: 1, disk: 25, transfer: 1, price: 6 },
  's-1vcpu-2gb': { memory: 2048, vcpus: 1, disk: 50, transfer: 2, price: 12 },
  's-2vcpu-2gb': { memory: 2048, vcpus: 2, disk: 60, transfer: 3, price: 18 },
  's-2vcpu-4gb': { memory: 4096, vcpus: 2, disk: 80, transfer: 4, price: 24 },
  's-4vcpu-8gb': { memory: 8192, vcpus: 4, disk: 160, transfer: 5, price: 48 },
  's-8vcpu-16gb': { memory: 16384, vcpus: 8, disk: 320, transfer: 6, price: 96 },
};

const IMAGES: Record<string, { id: number; name: string; distribution: string }> = {
  'ubuntu-24-04-x64': { id: 160000001, name: '24.04 (LTS) x64', distribution: 'Ubuntu' },
  'ubuntu-22-04-x64': { id: 160000002, name: '22.04 (LTS) x64', distribution: 'Ubuntu' },
  'debian-12-x64': { id: 160000003, name: '12 x64', distribution: 'Debian' },
};

const TAG_NAME = /^[A-Za-z0-9:_-]{1,255}$/;
const HOSTNAME = /^[A-Za-z0-9.-]{1,255}$/;
const EPOCH = Date.parse('2026-01-01T00:00:00Z');

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

/** Starts the simulator on 127.0.0.1 and a free port. */
export async function startDoSimulator(options: DoSimulatorOptions = {}): Promise<DoSimulator> {
  const token = options.token ?? SIMULATOR_TOKEN;
  const activateAfter = options.activateAfterPolls ?? 2;
  const completeAfter = options.completeActionsAfterPolls ?? 1;
  const rateLimit = options.rateLimit ?? 5000;
  const keyListLimit = options.sshKeyListLimitPerMinute ?? 10;

  const requests: RecordedRequest[] = [];
  const faults: Array<Fault & { remaining: number }> = [];
  const droplets = new Map<number, SimDroplet & { _polls: number }>();
  const keys = new Map<number, SimSshKey>();
  const tags = new Set<string>();
  const actions = new Map<number, ActionState>();
  const failingActionTypes: string[] = [];
  const keyListTimes: number[] = [];
  const replyHooks: Array<{ method?: string; path?: string | RegExp; status?: number; hook: (request: RecordedRequest) => Promise<void> | void }> = [];
  let seq = 0;
  let nextDropletId = 500000001;
  let nextKeyId = 41000001;
  let nextActionId = 2000000001;
  let used = 0;
  const windowStart = Date.now();
  const clockNow = options.now ?? Date.now;
  let pausedUntil = 0;
  let accepted = 0;
  let burstLeft = 0;
  let baseUrl = '';

  const clock = (n: number): string => new Date(EPOCH + n * 1000).toISOString().replace('.000Z', 'Z');

  function regionOf(slug: string): SimRegion {
    return { name: REGIONS[slug] ?? slug, slug, features: ['backups', 'ipv6', 'metadata', 'install_agent'], available: true, sizes: Object.keys(SIZES) };
  }

  function sizeOf(slug: string): SimSize {
    const s = SIZES[slug];
    if (s === undefined) throw new HttpError(422, 'unprocessable_entity', 'You specified an invalid size for Droplet creation.');
    return {
      slug,
      memory: s.memory,
      vcpus: s.vcpus,
      disk: s.disk,
      transfer: s.transfer,
      price_monthly: s.price,
      price_hourly: Math.round((s.price / 672) * 10000) / 10000,
      regions: Object.keys(REGIONS),
      available: true,
      description: 'Basic',
    };
  }

  function imageOf(slug: string): SimImage {
    const i = IMAGES[slug];
    if (i === undefined) throw new HttpError(422, 'unprocessable_entity', 'You specified an invalid image for Droplet creation.');
    return {
      id: i.id,
      name: i.name,
      distribution: i.distribution,
      slug,
      public: true,
      regions: Object.keys(REGIONS),
      created_at: clock(0),
      min_disk_size: 7,
      type: 'base',
      size_gigabytes: 2.5,
      description: `${i.distribution} ${i.name}`,
      tags: [],
      status: 'available',
    };
  }

  function networksFor(id: number, name: string): SimNetwork[] {
    const n = id - 500000000;
    const publicIp = options.publicIPv4?.({ id, name }) ?? `203.0.113.${n % 250}`;
    return [
      { ip_address: `10.108.0.${n % 250}`, netmask: '255.255.240.0', gateway: '', type: 'private' },
      { ip_address: publicIp, netmask: '255.255.255.0', gateway: '203.0.113.1', type: 'public' },
    ];
  }

  function activateDroplet(d: SimDroplet): void {
    if (d.status !== 'new') return;
    d.status = 'active';
    d.locked = false;
    d.networks.v4 = networksFor(d.id, d.name);
    for (const state of actions.values()) {
      if (state.action.type === 'create' && state.action.resource_id === d.id) finishAction(state);
    }
  }

  function newDroplet(input: { name: string; region: string; size: string; image: string; tags: readonly string[]; status: SimDroplet['status'] }): SimDroplet & { _polls: number } {
    if (REGIONS[input.region] === undefined) throw new HttpError(422, 'unprocessable_entity', 'You specified an invalid region for Droplet creation.');
    const size = sizeOf(input.size);
    const image = imageOf(input.image);
    const id = nextDropletId++;
    const d: SimDroplet & { _polls: number } = {
      id,
      name: input.name,
      memory: size.memory,
      vcpus: size.vcpus,
      disk: size.disk,
      locked: false,
      status: input.status,
      kernel: null,
      created_at: clock(id - 500000000),
      features: ['droplet_agent', 'private_networking'],
      backup_ids: [],
      next_backup_window: null,
      snapshot_ids: [],
      image,
      volume_ids: [],
      size,
      size_slug: size.slug,
      networks: { v4: input.status === 'new' ? [] : networksFor(id, input.name), v6: [] },
      region: regionOf(input.region),
      tags: [...new Set(input.tags)],
      vpc_uuid: `5a4981aa-0000-4000-8000-${String(id).padStart(12, '0')}`,
      _polls: 0,
    };
    for (const t of d.tags) tags.add(t);
    droplets.set(id, d);
    return d;
  }

  /** A droplet as the API shows it; every observation counts towards activation. */
  function observe(d: SimDroplet & { _polls: number }): SimDroplet {
    if (d.status === 'new' && d._polls >= activateAfter) activateDroplet(d);
    d._polls++;
    for (const state of actions.values()) {
      if (state.action.resource_id === d.id) pollAction(state);
    }
    const { _polls: _ignored, ...visible } = d;
    return structuredClone(visible);
  }

  function pollAction(state: ActionState): void {
    // a create action finishes when its droplet turns active, not on its own schedule
    if (state.action.status !== 'in-progress' || state.action.type === 'create') return;
    if (state.polls >= completeAfter) finishAction(state);
    else state.polls++;
  }

  function finishAction(state: ActionState): void {
    if (state.action.status !== 'in-progress') return;
    const d = droplets.get(state.action.resource_id);
    if (state.errorOnComplete) {
      state.action.status = 'errored';
    } else {
      state.action.status = 'completed';
      state.apply();
    }
    state.action.completed_at = clock(1000 + state.action.id - 2000000000);
    if (d !== undefined) d.locked = false;
  }

  function startAction(d: SimDroplet, type: string, apply: () => void): SimAction {
    const id = nextActionId++;
    const action: SimAction = {
      id,
      status: 'in-progress',
      type,
      started_at: clock(1000 + id - 2000000000),
      completed_at: null,
      resource_id: d.id,
      resource_type: 'droplet',
      region: d.region,
      region_slug: d.region.slug,
    };
    const failIndex = failingActionTypes.indexOf(type);
    if (failIndex >= 0) failingActionTypes.splice(failIndex, 1);
    actions.set(id, { action, polls: 0, apply, errorOnComplete: failIndex >= 0 });
    d.locked = true;
    return action;
  }

  function paginate<T>(items: T[], url: URL, key: string): Record<string, unknown> {
    const perPageRaw = Number(url.searchParams.get('per_page') ?? '20');
    const pageRaw = Number(url.searchParams.get('page') ?? '1');
    if (!Number.isInteger(perPageRaw) || perPageRaw < 1 || !Number.isInteger(pageRaw) || pageRaw < 1) {
      throw new HttpError(400, 'bad_request', 'page and per_page must be positive integers');
    }
    const perPage = Math.min(200, perPageRaw);
    const lastPage = Math.max(1, Math.ceil(items.length / perPage));
    const page = pageRaw;
    const slice = items.slice((page - 1) * perPage, page * perPage);
    const link = (p: number): string => {
      const u = new URL(url.pathname, baseUrl);
      for (const [k, v] of url.searchParams) if (k !== 'page' && k !== 'per_page') u.searchParams.set(k, v);
      u.searchParams.set('page', String(p));
      u.searchParams.set('per_page', String(perPage));
      return u.toString();
    };
    const pages: Record<string, string> = {};
    if (page > 1) {
      pages.first = link(1);
      pages.prev = link(Math.min(page - 1, lastPage));
    }
    if (page < lastPage) {
      pages.next = link(page + 1);
      pages.last = link(lastPage);
    }
    return { [key]: slice, links: Object.keys(pages).length === 0 ? {} : { pages }, meta: { total: items.length } };
  }

  function md5Fingerprint(publicKey: string): string {
    const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64');
    return (createHash('md5').update(blob).digest('hex').match(/../g) ?? []).join(':');
  }

  function addKey(name: string, publicKey: string): SimSshKey {
    const trimmed = publicKey.trim();
    if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(trimmed)) {
      throw new HttpError(422, 'unprocessable_entity', 'Key invalid type, we support ssh-rsa, ssh-ed25519 and ecdsa keys');
    }
    const fingerprint = md5Fingerprint(trimmed);
    if ([...keys.values()].some((k) => k.fingerprint === fingerprint)) {
      throw new HttpError(422, 'unprocessable_entity', 'SSH Key is already in use on your account');
    }
    const key: SimSshKey = { id: nextKeyId++, fingerprint, public_key: trimmed, name };
    keys.set(key.id, key);
    return key;
  }

  function dropletFromPath(idText: string | undefined): SimDroplet & { _polls: number } {
    const d = idText !== undefined && /^\d+$/.test(idText) ? droplets.get(Number(idText)) : undefined;
    if (d === undefined) throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
    return d;
  }

  function route(method: string, url: URL, body: unknown): { status: number; body?: unknown } {
    const parts = url.pathname.split('/').filter((p) => p !== '');
    if (parts[0] !== 'v2') throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
    const [, resource, a, b, c] = parts;
    const input = (body ?? {}) as Record<string, unknown>;

    if (resource === 'droplets' && a === undefined) {
      if (method === 'GET') {
        const tag = url.searchParams.get('tag_name');
        const name = url.searchParams.get('name');
        if (tag !== null && name !== null) throw new HttpError(422, 'unprocessable_entity', 'tag_name can not be combined with name');
        const list = [...droplets.values()]
          .filter((d) => tag === null || d.tags.includes(tag))
          .filter((d) => name === null || d.name.toLowerCase() === name.toLowerCase())
          .sort((x, y) => x.id - y.id);
        const pageBody = paginate(list, url, 'droplets');
        pageBody.droplets = (pageBody.droplets as Array<SimDroplet & { _polls: number }>).map(observe);
        return { status: 200, body: pageBody };
      }
      if (method === 'POST') {
        if (Array.isArray(input.names)) throw new HttpError(422, 'unprocessable_entity', 'the simulator supports single-droplet creates only');
        if (typeof input.name !== 'string' || !HOSTNAME.test(input.name)) {
          throw new HttpError(422, 'unprocessable_entity', 'Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)');
        }
        for (const field of ['region', 'size'] as const) {
          if (typeof input[field] !== 'string') throw new HttpError(422, 'unprocessable_entity', `${field} is required`);
        }
        if (typeof input.image !== 'string' && typeof input.image !== 'number') throw new HttpError(422, 'unprocessable_entity', 'image is required');
        const imageSlug = typeof input.image === 'number' ? Object.entries(IMAGES).find(([, i]) => i.id === input.image)?.[0] ?? '' : input.image;
        const dropletTags = input.tags === undefined || input.tags === null ? [] : input.tags;
        if (!Array.isArray(dropletTags) || dropletTags.some((t) => typeof t !== 'string' || !TAG_NAME.test(t))) {
          throw new HttpError(422, 'unprocessable_entity', 'Tag names may only contain letters, numbers, colons, dashes, and underscores');
        }
        const sshKeys = input.ssh_keys === undefined ? [] : input.ssh_keys;
        if (!Array.isArray(sshKeys)) throw new HttpError(422, 'unprocessable_entity', 'ssh_keys must be an array');
        for (const k of sshKeys) {
          const known = [...keys.values()].some((key) => key.id === k || key.fingerprint === k || String(key.id) === k);
          if (!known) throw new HttpError(422, 'unprocessable_entity', `ssh_keys contains an invalid key: ${String(k)}`);
        }
        if (input.user_data !== undefined && (typeof input.user_data !== 'string' || input.user_data.length > 64 * 1024)) {
          throw new HttpError(422, 'unprocessable_entity', 'user_data must be a string of at most 64 KiB');
        }
        const d = newDroplet({ name: input.name, region: String(input.region), size: String(input.size), image: imageSlug, tags: dropletTags as string[], status: 'new' });
        d.locked = true;
        const create = startAction(d, 'create', () => activateDroplet(d));
        const { _polls: _ignored, ...visible } = d;
        return {
          status: 202,
          body: { droplet: structuredClone(visible), links: { actions: [{ id: create.id, rel: 'create', href: `${baseUrl}/v2/actions/${create.id}` }] } },
        };
      }
      if (method === 'DELETE') {
        // DELETE /v2/droplets?tag_name= deletes every droplet with the tag. Santokit must never call it.
        const tag = url.searchParams.get('tag_name');
        if (tag === null) throw new HttpError(422, 'unprocessable_entity', 'tag_name is required');
        for (const d of [...droplets.values()]) if (d.tags.includes(tag)) droplets.delete(d.id);
        return { status: 204 };
      }
    }

    if (resource === 'droplets' && a !== undefined && b === undefined) {
      const d = dropletFromPath(a);
      if (method === 'GET') return { status: 200, body: { droplet: observe(d) } };
      if (method === 'DELETE') {
        droplets.delete(d.id);
        return { status: 204 };
      }
    }

    if (resource === 'droplets' && a !== undefined && b === 'actions') {
      const d = dropletFromPath(a);
      if (method === 'GET' && c !== undefined) {
        const state = actions.get(Number(c));
        if (state === undefined || state.action.resource_id !== d.id) throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
        pollAction(state);
        return { status: 200, body: { action: structuredClone(state.action) } };
      }
      if (method === 'POST' && c === undefined) return { status: 201, body: { action: dropletAction(d, input) } };
    }

    if (resource === 'actions' && a !== undefined && b === undefined && method === 'GET') {
      const state = /^\d+$/.test(a) ? actions.get(Number(a)) : undefined;
      if (state === undefined) throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
      pollAction(state);
      return { status: 200, body: { action: structuredClone(state.action) } };
    }

    if (resource === 'account' && a === 'keys') {
      if (method === 'GET') {
        const now = Date.now();
        while (keyListTimes.length > 0 && (keyListTimes[0] ?? 0) <= now - 60_000) keyListTimes.shift();
        if (keyListTimes.length >= keyListLimit) {
          const retryAfter = Math.max(1, Math.ceil(((keyListTimes[0] ?? now) + 60_000 - now) / 1000));
          throw Object.assign(new HttpError(429, 'too_many_requests', 'API Rate limit exceeded.'), { retryAfter });
        }
        keyListTimes.push(now);
        if (b === undefined) return { status: 200, body: paginate([...keys.values()].sort((x, y) => x.id - y.id), url, 'ssh_keys') };
        const key = [...keys.values()].find((k) => String(k.id) === b || k.fingerprint === b);
        if (key === undefined) throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
        return { status: 200, body: { ssh_key: key } };
      }
      if (method === 'POST' && b === undefined) {
        if (typeof input.name !== 'string' || input.name === '') throw new HttpError(422, 'unprocessable_entity', 'Name is required');
        if (typeof input.public_key !== 'string') throw new HttpError(422, 'unprocessable_entity', 'Public key is required');
        return { status: 201, body: { ssh_key: addKey(input.name, input.public_key) } };
      }
    }

    if (resource === 'tags') {
      if (method === 'POST' && a === undefined) {
        if (typeof input.name !== 'string' || !TAG_NAME.test(input.name)) {
          throw new HttpError(422, 'unprocessable_entity', 'Tag names may only contain letters, numbers, colons, dashes, and underscores');
        }
        tags.add(input.name);
        return { status: 201, body: { tag: tagBody(input.name) } };
      }
      if (a !== undefined && b === undefined && method === 'GET') {
        if (!tags.has(a)) throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
        return { status: 200, body: { tag: tagBody(a) } };
      }
      if (a !== undefined && b === 'resources' && (method === 'POST' || method === 'DELETE')) {
        if (!tags.has(a)) throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
        const resources = input.resources;
        if (!Array.isArray(resources) || resources.length === 0) throw new HttpError(422, 'unprocessable_entity', 'resources is required');
        for (const r of resources as Array<{ resource_id?: unknown; resource_type?: unknown }>) {
          if (r.resource_type !== 'droplet') throw new HttpError(422, 'unprocessable_entity', 'the simulator only tags droplets');
          const d = dropletFromPath(String(r.resource_id));
          if (method === 'POST' && !d.tags.includes(a)) d.tags.push(a);
          if (method === 'DELETE') d.tags = d.tags.filter((t) => t !== a);
        }
        return { status: 204 };
      }
    }

    if (['droplets', 'actions', 'account', 'tags'].includes(resource ?? '')) {
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here`);
    }
    throw new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
  }

  function tagBody(name: string): unknown {
    const count = [...droplets.values()].filter((d) => d.tags.includes(name)).length;
    return { name, resources: { count, droplets: { count } } };
  }

  function dropletAction(d: SimDroplet, input: Record<string, unknown>): SimAction {
    if (d.locked) throw new HttpError(422, 'unprocessable_entity', 'Droplet already has a pending event.');
    switch (input.type) {
      case 'shutdown':
      case 'power_off':
        if (d.status === 'off') throw new HttpError(422, 'unprocessable_entity', 'Droplet is already powered off.');
        return startAction(d, input.type, () => {
          d.status = 'off';
        });
      case 'power_on':
        if (d.status === 'active') throw new HttpError(422, 'unprocessable_entity', 'Droplet is already powered on.');
        return startAction(d, 'power_on', () => {
          d.status = 'active';
        });
      case 'resize': {
        if (d.status !== 'off') throw new HttpError(422, 'unprocessable_entity', 'Droplet is currently on. Please power it off to run this event.');
        if (typeof input.size !== 'string' || SIZES[input.size] === undefined) throw new HttpError(422, 'unprocessable_entity', 'You specified an invalid size for Droplet resize.');
        if (input.size === d.size_slug) throw new HttpError(422, 'unprocessable_entity', 'Droplet is already this size.');
        const target = sizeOf(input.size);
        const disk = input.disk === true;
        if (target.disk < d.disk) throw new HttpError(422, 'unprocessable_entity', "Size can not decrease size of Droplet's disk image");
        return startAction(d, 'resize', () => {
          d.size = target;
          d.size_slug = target.slug;
          d.memory = target.memory;
          d.vcpus = target.vcpus;
          if (disk) d.disk = target.disk;
        });
      }
      default:
        throw new HttpError(422, 'unprocessable_entity', `the simulator does not support the ${String(input.type)} action`);
    }
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>>): void {
    const remaining = Math.max(0, rateLimit - used);
    res.setHeader('ratelimit-limit', String(rateLimit));
    res.setHeader('ratelimit-remaining', String(remaining));
    res.setHeader('ratelimit-reset', String(Math.floor((windowStart + 3_600_000) / 1000)));
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    if (status === 204 || body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.writeHead(status);
    res.end(JSON.stringify(body));
  }

  async function runReplyHook(record: RecordedRequest, status: number): Promise<void> {
    const i = replyHooks.findIndex(
      (h) =>
        (h.method === undefined || h.method === record.method) &&
        (h.status === undefined || h.status === status) &&
        (h.path === undefined || (typeof h.path === 'string' ? h.path === record.path : h.path.test(record.path))),
    );
    if (i < 0) return;
    const [entry] = replyHooks.splice(i, 1);
    record.status = status;
    await entry?.hook(record);
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', baseUrl);
      const method = req.method ?? 'GET';
      const text = await readBody(req);
      let body: unknown;
      let badJson = false;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        badJson = true;
      }
      seq++;
      const requestId = `5ea1c0de-0000-4000-8000-${String(seq).padStart(12, '0')}`;
      const record: RecordedRequest = {
        seq,
        method,
        path: url.pathname,
        search: url.search,
        query: Object.fromEntries(url.searchParams),
        body,
        authorized: req.headers.authorization === `Bearer ${token}`,
        status: 0,
      };
      requests.push(record);
      const reply = (status: number, payload: unknown, headers: Readonly<Record<string, string>> = {}): void => {
        record.status = status;
        send(res, status, payload, headers);
      };
      const errorReply = (status: number, id: string, message: string, headers: Readonly<Record<string, string>> = {}): void =>
        reply(status, { id, message, request_id: requestId }, headers);

      const fault = faults.find(
        (f) => f.remaining > 0 && (f.method === undefined || f.method === method) && (f.path === undefined || (typeof f.path === 'string' ? f.path === url.pathname : f.path.test(url.pathname))),
      );
      if (fault !== undefined) {
        fault.remaining--;
        const defaults: Record<number, [string, string]> = {
          401: ['Unauthorized', 'Unable to authenticate you'],
          429: ['too_many_requests', 'API Rate limit exceeded.'],
          500: ['server_error', 'Server was unable to give you a response.'],
          502: ['bad_gateway', 'Bad gateway.'],
          503: ['service_unavailable', 'The service is temporarily unavailable.'],
        };
        const [id, message] = defaults[fault.status] ?? ['error', 'Scripted failure.'];
        if (fault.afterEffect === true) {
          try {
            route(method, url, body);
          } catch {
            // the fault is the answer either way
          }
        }
        reply(fault.status, fault.body ?? { id, message, request_id: requestId }, fault.headers ?? {});
        return;
      }
      if (!record.authorized) {
        errorReply(401, 'Unauthorized', 'Unable to authenticate you');
        return;
      }
      if (options.rateLimitBurst !== undefined || options.serverErrorEvery !== undefined) {
        const t = clockNow();
        if (t < pausedUntil) {
          record.duringRetryAfter = true;
          errorReply(429, 'too_many_requests', 'API Rate limit exceeded.', { 'retry-after': String(Math.max(1, Math.ceil((pausedUntil - t) / 1000))) });
          return;
        }
        const burst = options.rateLimitBurst;
        if (burst !== undefined && burstLeft > 0) {
          burstLeft--;
          pausedUntil = t + burst.retryAfterSeconds * 1000;
          errorReply(429, 'too_many_requests', 'API Rate limit exceeded.', { 'retry-after': String(burst.retryAfterSeconds) });
          return;
        }
        accepted++;
        if (burst !== undefined && accepted % burst.every === 0) burstLeft = burst.length;
        if (options.serverErrorEvery !== undefined && accepted % options.serverErrorEvery === 0) {
          errorReply(500, 'server_error', 'Server was unable to give you a response.');
          return;
        }
      }
      used++;
      if (used > rateLimit) {
        errorReply(429, 'too_many_requests', 'API Rate limit exceeded.', { 'retry-after': '60' });
        return;
      }
      if (badJson) {
        errorReply(400, 'bad_request', 'The request body is not valid JSON.');
        return;
      }
      try {
        const out = route(method, url, body);
        await runReplyHook(record, out.status);
        reply(out.status, out.body);
      } catch (err) {
        if (err instanceof HttpError) {
          await runReplyHook(record, err.status);
          const retryAfter = (err as HttpError & { retryAfter?: number }).retryAfter;
          errorReply(err.status, err.id, err.message, retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) });
        } else {
          errorReply(500, 'server_error', err instanceof Error ? err.message : String(err));
        }
      }
    })();
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    url: baseUrl,
    token,
    requests,
    requestsTo(method, path) {
      return requests.filter((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)));
    },
    clearRequests() {
      requests.length = 0;
    },
    droplets() {
      return [...droplets.values()].sort((x, y) => x.id - y.id).map(({ _polls: _ignored, ...d }) => structuredClone(d));
    },
    droplet(id) {
      const d = droplets.get(Number(id));
      if (d === undefined) return undefined;
      const { _polls: _ignored, ...visible } = d;
      return structuredClone(visible);
    },
    seedDroplet(input) {
      const d = newDroplet({
        name: input.name,
        region: input.region ?? 'nyc1',
        size: input.size ?? 's-2vcpu-4gb',
        image: input.image ?? 'ubuntu-24-04-x64',
        tags: input.tags ?? [],
        status: input.status ?? 'active',
      });
      const { _polls: _ignored, ...visible } = d;
      return structuredClone(visible);
    },
    seedSshKey(name, publicKey) {
      return structuredClone(addKey(name, publicKey));
    },
    activate(id) {
      for (const d of droplets.values()) {
        if (id === undefined || d.id === Number(id)) activateDroplet(d);
      }
    },
    completeActions() {
      for (const state of actions.values()) if (state.action.type !== 'create') finishAction(state);
    },
    failNextAction(type) {
      failingActionTypes.push(type);
    },
    fail(fault) {
      faults.push({ ...fault, remaining: fault.times ?? 1 });
    },
    beforeReply(match, hook) {
      replyHooks.push({ ...match, hook });
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
