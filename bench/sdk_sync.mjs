// The official Jules TypeScript SDK's own first sync (`jules.sync`, depth "activities":
// every session, then each session's activities), pointed at a base URL. Prints its
// figures as one line of JSON. Run by bench/sdk_compare.py, which installs the SDK:
//
//     node bench/sdk_sync.mjs SDK_DIR BASE_URL API_KEY [CONCURRENCY]
//
// SDK_DIR holds node_modules/@google/jules-sdk; the SDK's cache goes to JULES_HOME.
import path from "node:path";
import { pathToFileURL } from "node:url";

const [sdkDir, baseUrl, apiKey, concurrency] = process.argv.slice(2);
const entry = path.join(sdkDir, "node_modules", "@google", "jules-sdk", "dist", "index.mjs");
const { jules } = await import(pathToFileURL(entry).href);

const client = jules.with({ apiKey, baseUrl });
// A first sync of the whole account: no limit, no stop at a known record.
const options = { depth: "activities", limit: Number.MAX_SAFE_INTEGER, incremental: false };
if (concurrency) options.concurrency = Number(concurrency);
const started = performance.now();
const stats = await client.sync(options);
const seconds = (performance.now() - started) / 1000;
console.log(
  JSON.stringify({
    seconds,
    sessions: stats.sessionsIngested,
    activities: stats.activitiesIngested,
    complete: stats.isComplete,
  }),
);
