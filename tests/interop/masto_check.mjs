// What a browser app built on masto.js (Elk, Phanpy) does against a Voisinage server.
//
// Run by tests/interop/test_masto_js.py against a real `voisinage serve`. Environment:
//   VOISINAGE_URL      base URL of the server (http://127.0.0.1:PORT)
//   VOISINAGE_TOKEN    user token of the first resident (the one who posts)
//   VOISINAGE_TOKEN_2  user token of a second resident of the same village (favourites, streaming)
//   VOISINAGE_PNG      path of a PNG file to upload
//
// Every step prints one JSON line on stdout: {"step", "ok": true, "ms", "detail"} or
// {"step", "ok": false, "error", "last_request"} or {"step", "ok": false, "skipped": "<why>"} when a step it
// needs failed. The last line is {"done": true, "failed": [...]}. Exit status 1 when any step failed.

import { readFile } from "node:fs/promises";
import { createRestAPIClient, createStreamingAPIClient } from "masto";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.log(JSON.stringify({ done: true, failed: ["setup"], error: `${name} is not set` }));
    process.exit(2);
  }
  return value;
};

const URL_ = env("VOISINAGE_URL");
const TOKEN = env("VOISINAGE_TOKEN");
const TOKEN_2 = env("VOISINAGE_TOKEN_2");
const PNG = env("VOISINAGE_PNG");
const PAGED_POSTS = 45;

// The last HTTP exchange, so a failure names the endpoint and the answer the server gave.
let lastRequest = null;
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = input instanceof Request ? input : new Request(input, init);
  const url = new URL(request.url);
  lastRequest = { method: request.method, path: url.pathname + url.search };
  const response = await realFetch(input, init);
  lastRequest.status = response.status;
  lastRequest.content_type = response.headers.get("content-type");
  if (!response.ok) {
    lastRequest.body = (await response.clone().text()).slice(0, 300);
  }
  return response;
};

const results = new Map();
const state = {};

function describe(error) {
  if (error && error.statusCode !== undefined) {
    return `${error.name} HTTP ${error.statusCode}: ${error.message}`;
  }
  return error && error.message ? `${error.name || "Error"}: ${error.message}` : String(error);
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function step(name, needs, body) {
  const missing = needs.filter((n) => results.get(n) !== true);
  if (missing.length) {
    results.set(name, false);
    console.log(JSON.stringify({ step: name, ok: false, skipped: `needs ${missing.join(", ")}` }));
    return;
  }
  const started = Date.now();
  lastRequest = null;
  try {
    const detail = await withTimeout(Promise.resolve().then(body), 30000, name);
    results.set(name, true);
    console.log(JSON.stringify({ step: name, ok: true, ms: Date.now() - started, detail: detail ?? null }));
  } catch (error) {
    results.set(name, false);
    console.log(JSON.stringify({ step: name, ok: false, ms: Date.now() - started, error: describe(error),
                                 last_request: lastRequest }));
  }
}

async function expectNotFound(promise, what) {
  try {
    await promise;
  } catch (error) {
    check(error.statusCode === 404, `${what}: expected 404, got ${describe(error)}`);
    return;
  }
  throw new Error(`${what}: expected 404, got a success`);
}

const anna = createRestAPIClient({ url: URL_, accessToken: TOKEN, timeout: 15000, mediaTimeout: 20000 });
const bert = createRestAPIClient({ url: URL_, accessToken: TOKEN_2, timeout: 15000 });

// ---- launch: what an app calls when it opens ----

await step("instance_v1", [], async () => {
  const instance = await anna.v1.instance.fetch();
  check(typeof instance.uri === "string" && instance.uri.length > 0, "uri missing");
  check(typeof instance.urls?.streamingApi === "string", "urls.streaming_api missing");
  return { uri: instance.uri, title: instance.title, version: instance.version };
});

await step("instance_v2", [], async () => {
  const instance = await anna.v2.instance.fetch();
  check(typeof instance.domain === "string" && instance.domain.length > 0, "domain missing");
  const streaming = instance.configuration?.urls?.streaming;
  check(typeof streaming === "string" && /^wss?:\/\//.test(streaming), `configuration.urls.streaming is ${streaming}`);
  check(instance.configuration?.statuses?.maxMediaAttachments >= 1, "configuration.statuses.max_media_attachments");
  check(Array.isArray(instance.configuration?.mediaAttachments?.supportedMimeTypes),
        "configuration.media_attachments.supported_mime_types");
  state.streamingUrl = streaming;
  return { domain: instance.domain, version: instance.version, streaming };
});

await step("verify_credentials", [], async () => {
  const me = await anna.v1.accounts.verifyCredentials();
  check(me.username === "anna", `username is ${me.username}`);
  check(typeof me.id === "string", "id is not a string");
  check(me.source && typeof me.source.privacy === "string", "source.privacy missing");
  state.me = me;
  const other = await bert.v1.accounts.verifyCredentials();
  state.bert = other;
  return { id: me.id, acct: me.acct, privacy: me.source.privacy };
});

await step("custom_emojis", [], async () => {
  const emojis = await anna.v1.customEmojis.list();
  check(Array.isArray(emojis), "not an array");
  return { count: emojis.length };
});

await step("preferences", [], async () => {
  const prefs = await anna.v1.preferences.fetch();
  check(typeof prefs["posting:default:visibility"] === "string", "posting:default:visibility missing");
  check("reading:expand:spoilers" in prefs, "reading:expand:spoilers missing");
  return prefs;
});

await step("lists", [], async () => {
  const lists = await anna.v1.lists.list();
  check(Array.isArray(lists), "not an array");
  const made = await anna.v1.lists.create({ title: "Voisins proches" });
  check(typeof made.id === "string" && made.title === "Voisins proches", "created list is wrong");
  const after = await anna.v1.lists.list();
  check(after.some((l) => l.id === made.id), "created list not listed");
  await anna.v1.lists.$select(made.id).remove();
  await expectNotFound(anna.v1.lists.$select(made.id).fetch(), "deleted list");
  return { before: lists.length, created: made.id };
});

await step("filters_v2", [], async () => {
  const filters = await anna.v2.filters.list();
  check(Array.isArray(filters), "not an array");
  return { count: filters.length };
});

await step("filters_v2_create", [], async () => {
  const made = await anna.v2.filters.create({
    title: "Pas de spoilers", context: ["home", "public"], filterAction: "warn",
    keywordsAttributes: [{ keyword: "spoiler", wholeWord: true }],
  });
  check(typeof made.id === "string", "id is not a string");
  check(made.keywords?.length === 1 && made.keywords[0].keyword === "spoiler", "keywords_attributes[] lost");
  check(made.keywords[0].wholeWord === true, "whole_word lost");
  const listed = await anna.v2.filters.list();
  check(listed.some((f) => f.id === made.id), "created filter not listed");
  await anna.v2.filters.$select(made.id).remove();
  await expectNotFound(anna.v2.filters.$select(made.id).fetch(), "deleted filter");
  return { id: made.id, context: made.context, action: made.filterAction };
});

await step("filters_v1", [], async () => {
  const filters = await anna.v1.filters.list();
  check(Array.isArray(filters), "not an array");
  return { count: filters.length };
});

await step("markers", [], async () => {
  const markers = await anna.v1.markers.fetch({ timeline: ["home", "notifications"] });
  check(markers && typeof markers === "object" && !Array.isArray(markers), "not an object");
  return { timelines: Object.keys(markers) };
});

await step("notifications", [], async () => {
  const notifications = await anna.v1.notifications.list({ limit: 30 });
  check(Array.isArray(notifications), "not an array");
  return { count: notifications.length };
});

await step("announcements_trends", [], async () => {
  const announcements = await anna.v1.announcements.list();
  check(Array.isArray(announcements), "announcements is not an array");
  const tags = await anna.v1.trends.tags.list();
  check(Array.isArray(tags), "trends/tags is not an array");
  return { announcements: announcements.length, trending_tags: tags.length };
});

// ---- a photo: v2 upload, masto.js polls GET /api/v1/media/:id until `url` is set ----

await step("media_upload_v2", [], async () => {
  const bytes = await readFile(PNG);
  const file = new Blob([bytes], { type: "image/png" });
  const media = await anna.v2.media.create({ file, description: "Le vélo d'enfant, bleu" });
  check(typeof media.id === "string", "id is not a string");
  check(media.type === "image", `type is ${media.type}`);
  check(typeof media.url === "string" && media.url.length > 0, "url still empty after polling");
  check(media.description === "Le vélo d'enfant, bleu", `description is ${media.description}`);
  const served = await realFetch(media.url);
  check(served.ok, `GET ${media.url} answered ${served.status}`);
  const type = served.headers.get("content-type") || "";
  check(type.startsWith("image/"), `media file served as ${type}`);
  state.media = media;
  return { id: media.id, url: media.url, served_as: type, blurhash: media.blurhash ?? null };
});

await step("media_fetch", ["media_upload_v2"], async () => {
  const media = await anna.v1.media.$select(state.media.id).fetch();
  check(media.id === state.media.id && media.url === state.media.url, "GET /api/v1/media/:id differs");
  return { id: media.id };
});

// ---- streaming: the second resident listens to `user` while the first one posts ----

async function openUserStream() {
  const streaming = createStreamingAPIClient({ streamingApiUrl: state.streamingUrl, accessToken: TOKEN_2,
                                              retry: 2 });
  const events = [];
  const subscription = streaming.user.subscribe();
  const reading = (async () => {
    for await (const event of subscription) {
      events.push(event);
    }
  })().catch((error) => {
    events.push({ error: describe(error) });
  });
  await withTimeout(streaming.prepare(), 5000, "websocket connection");
  await new Promise((resolve) => setTimeout(resolve, 300));  // the subscribe message reaches the server
  return { streaming, events, reading };
}

await step("streaming_connect", ["instance_v2", "verify_credentials"], async () => {
  await bert.v1.accounts.$select(state.me.id).follow();
  state.stream = await openUserStream();
  return { url: state.streamingUrl };
});

await step("status_with_photo", ["media_upload_v2"], async () => {
  const status = await anna.v1.statuses.create({ status: "Je donne un vélo d'enfant #annonce tournesol",
                                                 mediaIds: [state.media.id], visibility: "public" });
  check(status.mediaAttachments.length === 1, `${status.mediaAttachments.length} attachments`);
  check(status.mediaAttachments[0].id === state.media.id, "attachment is another media");
  check(status.mediaAttachments[0].description === "Le vélo d'enfant, bleu", "description lost");
  const again = await anna.v1.statuses.$select(status.id).fetch();
  check(again.mediaAttachments.length === 1 && again.mediaAttachments[0].url === state.media.url,
        "GET /api/v1/statuses/:id lost the photo");
  state.photoStatus = status;
  return { id: status.id, attachment: status.mediaAttachments[0].id };
});

await step("streaming_update", ["streaming_connect", "status_with_photo"], async () => {
  const wanted = state.photoStatus.id;
  const matches = (e) => e.event === "update" && (e.payload?.id === wanted || e.payload?.reblog?.id === wanted);
  const deadline = Date.now() + 5000;
  while (!state.stream.events.some(matches) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const got = state.stream.events.find(matches);
  const seen = state.stream.events.map((e) => e.error ?? `${e.event}:${e.stream}`);
  check(got, `no update for ${wanted} within 5 s; events seen: ${JSON.stringify(seen)}`);
  check(got.stream.includes("user"), `stream is ${got.stream}`);
  return { stream: got.stream, events: seen };
});

await step("edit", ["status_with_photo"], async () => {
  const id = state.photoStatus.id;
  const edited = await anna.v1.statuses.$select(id).update({
    status: "Je donne un vélo d'enfant bleu #annonce tournesol", mediaIds: [state.media.id],
  });
  check(edited.id === id, "PUT answered another status");
  check(edited.content.includes("bleu"), "content not updated");
  check(typeof edited.editedAt === "string", "edited_at not set");
  check(edited.mediaAttachments.length === 1 && edited.mediaAttachments[0].id === state.media.id,
        "the edit lost the photo");
  const source = await anna.v1.statuses.$select(id).source.fetch();
  check(source.text.includes("bleu"), "GET /source does not give the new text");
  const history = await anna.v1.statuses.$select(id).history.list();
  check(history.length === 2, `history has ${history.length} versions`);
  return { edited_at: edited.editedAt, versions: history.length };
});

// ---- paging through home with masto.js's paginator (Link headers) ----

await step("home_paging", ["verify_credentials"], async () => {
  const posted = new Set();
  for (let i = 0; i < PAGED_POSTS; i++) {
    const status = await anna.v1.statuses.create({ status: `Message de quartier ${i}`, visibility: "private" });
    posted.add(status.id);
  }
  const seen = [];
  let pages = 0;
  for await (const page of anna.v1.timelines.home.list({ limit: 20 })) {
    pages += 1;
    check(page.length <= 20, `page of ${page.length} statuses for limit=20`);
    seen.push(...page.map((s) => s.id));
    check(pages <= 20, "the paginator does not end (a Link rel=next on every page)");
  }
  const unique = new Set(seen);
  check(unique.size === seen.length, `${seen.length - unique.size} duplicate ids across pages`);
  const missing = [...posted].filter((id) => !unique.has(id));
  check(missing.length === 0, `${missing.length} of ${PAGED_POSTS} posts never paged: ${missing.slice(0, 5)}`);
  const sorted = [...seen].sort((a, b) => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0));
  check(JSON.stringify(sorted) === JSON.stringify(seen), "home is not newest first across pages");
  check(pages >= 3, `${seen.length} statuses in ${pages} pages of 20`);
  state.newestHome = seen[0];
  return { pages, statuses: seen.length };
});

await step("markers_save", ["home_paging"], async () => {
  const saved = await anna.v1.markers.create({ home: { lastReadId: state.newestHome } });
  check(saved.home?.lastReadId === state.newestHome, `saved home marker is ${JSON.stringify(saved.home)}`);
  const read = await anna.v1.markers.fetch({ timeline: ["home"] });
  check(read.home?.lastReadId === state.newestHome, `home marker read back is ${JSON.stringify(read.home)}`);
  check(typeof read.home.version === "number" && typeof read.home.updatedAt === "string", "version/updated_at");
  return read.home;
});

// ---- favourite, bookmark ----

await step("favourite", ["status_with_photo"], async () => {
  const id = state.photoStatus.id;
  const status = await bert.v1.statuses.$select(id).favourite();
  check(status.favourited === true, "favourited is not true");
  check(status.favouritesCount === 1, `favourites_count is ${status.favouritesCount}`);
  const notifications = await anna.v1.notifications.list({ limit: 30 });
  check(notifications.some((n) => n.type === "favourite" && n.status?.id === id && n.account.id === state.bert.id),
        "no favourite notification for the author");
  return { id, favourites_count: status.favouritesCount };
});

await step("bookmark", ["status_with_photo"], async () => {
  const id = state.photoStatus.id;
  const status = await anna.v1.statuses.$select(id).bookmark();
  check(status.bookmarked === true, "bookmarked is not true");
  const bookmarks = await anna.v1.bookmarks.list({ limit: 20 });
  check(bookmarks.some((s) => s.id === id), "bookmarked status not in GET /api/v1/bookmarks");
  const again = await anna.v1.statuses.$select(id).fetch();
  check(again.bookmarked === true, "GET /api/v1/statuses/:id says bookmarked is not true");
  return { id, bookmarks: bookmarks.length };
});

await step("filter_applies", ["status_with_photo", "filters_v2_create"], async () => {
  const id = state.photoStatus.id;
  const filter = await anna.v2.filters.create({
    title: "Tournesols", context: ["home"], filterAction: "warn",
    keywordsAttributes: [{ keyword: "tournesol", wholeWord: true }],
  });
  try {
    const home = await anna.v1.timelines.home.list({ limit: 5, maxId: String(BigInt(id) + 1n) });
    const status = home.find((s) => s.id === id);
    check(status, "the photo status is not in home");
    const result = (status.filtered ?? []).find((r) => r.filter?.id === filter.id);
    check(result, `no filtered[] result for the filter: ${JSON.stringify(status.filtered)}`);
    check(result.filter.filterAction === "warn", `filter_action is ${result.filter.filterAction}`);
    check((result.keywordMatches ?? []).includes("tournesol"), `keyword_matches is ${result.keywordMatches}`);
    return { keyword_matches: result.keywordMatches };
  } finally {
    await anna.v2.filters.$select(filter.id).remove();
  }
});

// ---- search v2 ----

await step("search", ["status_with_photo"], async () => {
  const people = await anna.v2.search.list({ q: "bert", type: "accounts" });
  check(Array.isArray(people.accounts) && Array.isArray(people.statuses) && Array.isArray(people.hashtags),
        "accounts/statuses/hashtags arrays missing");
  check(people.accounts.some((a) => a.id === state.bert.id), "resident bert not found by username");
  const words = await anna.v2.search.list({ q: "tournesol", type: "statuses" });
  check(words.statuses.some((s) => s.id === state.photoStatus.id), "own status not found by a word it contains");
  const tags = await anna.v2.search.list({ q: "#annonce" });
  check(tags.hashtags.some((t) => t.name.toLowerCase() === "annonce"), "hashtag annonce not found");
  return { accounts: people.accounts.length, statuses: words.statuses.length, hashtags: tags.hashtags.length };
});

// ---- delete ----

await step("delete", ["status_with_photo"], async () => {
  const id = state.photoStatus.id;
  const deleted = await anna.v1.statuses.$select(id).remove();
  check(deleted.id === id, "DELETE answered another status");
  check(typeof deleted.text === "string" && deleted.text.includes("vélo"), "no `text` source to redraft from");
  check(deleted.mediaAttachments?.length === 1, "deleted status lost its attachment (redraft keeps it)");
  await expectNotFound(anna.v1.statuses.$select(id).fetch(), "deleted status");
  const home = await anna.v1.timelines.home.list({ limit: 40 });
  check(!home.some((s) => s.id === id || s.reblog?.id === id), "deleted status still in home");
  return { id };
});

await step("streaming_delete", ["streaming_update", "delete"], async () => {
  const wanted = state.photoStatus.id;
  const matches = (e) => e.event === "delete" && e.payload === wanted;
  const deadline = Date.now() + 5000;
  while (!state.stream.events.some(matches) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  check(state.stream.events.some(matches), `no delete event for ${wanted} within 5 s`);
  return { id: wanted };
});

if (state.stream) {
  state.stream.streaming.close();
}
const failed = [...results].filter(([, ok]) => !ok).map(([name]) => name);
console.log(JSON.stringify({ done: true, failed }));
process.exit(failed.length ? 1 : 0);
