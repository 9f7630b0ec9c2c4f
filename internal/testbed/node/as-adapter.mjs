// An in-memory storage adapter for oidc-provider whose revokeByGrantId drops only the records of its
// own model. oidc-provider's bundled MemoryAdapter drops every model's records of the grant on the
// first call, so revoking an access token through an administrator client (which oidc-provider lets
// spare refresh tokens) would kill the refresh tokens too — unlike a database-backed server.
//
// Records are kept a minute past their expiry so oidc-provider can tell "expired" from "not found".
//
// With Adapter.keepUsedRefreshTokens set, consuming a refresh token leaves it valid: a refresh still
// returns a new refresh token, but the old one keeps working and is never seen as reused — Entra's
// behaviour ("refresh tokens are not revoked when used to acquire new access tokens").
const GRACE_MS = 60_000;

const records = new Map(); // `${model}:${id}` -> {payload, expiresAt}
const grants = new Map(); // `${model}:${grantId}` -> Set of ids
const secondary = new Map(); // `uid:${uid}` or `userCode:${code}` -> `${model}:${id}`

export default class Adapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    await this.destroy(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 + GRACE_MS : Infinity;
    records.set(this.key(id), { payload, expiresAt });
    if (payload.grantId) {
      const g = `${this.model}:${payload.grantId}`;
      if (!grants.has(g)) grants.set(g, new Set());
      grants.get(g).add(id);
    }
    if (payload.uid) secondary.set(`uid:${payload.uid}`, this.key(id));
    if (payload.userCode) secondary.set(`userCode:${payload.userCode}`, this.key(id));
  }

  async find(id) {
    const r = records.get(this.key(id));
    if (!r) return undefined;
    if (Date.now() > r.expiresAt) {
      await this.destroy(id);
      return undefined;
    }
    return r.payload;
  }

  async findByUid(uid) {
    return this.#findSecondary(`uid:${uid}`);
  }

  async findByUserCode(userCode) {
    return this.#findSecondary(`userCode:${userCode}`);
  }

  async #findSecondary(index) {
    const key = secondary.get(index);
    if (!key?.startsWith(`${this.model}:`)) return undefined;
    return this.find(key.slice(this.model.length + 1));
  }

  static keepUsedRefreshTokens = false;

  async consume(id) {
    if (Adapter.keepUsedRefreshTokens && this.model === 'RefreshToken') return;
    const r = records.get(this.key(id));
    if (r) r.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const key = this.key(id);
    const r = records.get(key);
    if (!r) return;
    records.delete(key);
    const { grantId, uid, userCode } = r.payload;
    if (grantId) grants.get(`${this.model}:${grantId}`)?.delete(id);
    if (uid && secondary.get(`uid:${uid}`) === key) secondary.delete(`uid:${uid}`);
    if (userCode && secondary.get(`userCode:${userCode}`) === key) secondary.delete(`userCode:${userCode}`);
  }

  async revokeByGrantId(grantId) {
    const g = `${this.model}:${grantId}`;
    for (const id of grants.get(g) ?? []) await this.destroy(id);
    grants.delete(g);
  }
}
