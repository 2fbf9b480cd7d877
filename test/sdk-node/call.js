// Calls one Tianshu action through the official Node.js SDK's CommonClient
// and prints {"ok": response} or {"error": {"code", "message"}} as JSON.
// Usage: node call.js ENDPOINT(host:port) SECRET_ID SECRET_KEY ACTION PARAMS_JSON
const { CommonClient } = require("tencentcloud-sdk-nodejs-common");

async function main() {
  const [endpoint, secretId, secretKey, action, params] = process.argv.slice(2);
  const client = new CommonClient(endpoint, "2026-11-28", {
    credential: { secretId, secretKey },
    region: "",
    profile: { httpProfile: { protocol: "http://", reqTimeout: 30 } },
  });
  try {
    const resp = await client.request(action, JSON.parse(params || "{}"));
    console.log(JSON.stringify({ ok: resp }));
  } catch (e) {
    console.log(JSON.stringify({ error: { code: e.code || "", message: e.message || String(e) } }));
  }
}
main();
