// yilian-bench vs-peers: the same workloads with automerge-repo (WebSocket + NodeFS storage)
// and PouchDB (replicating from an express-pouchdb server over HTTP), on 127.0.0.1, in this
// process. Prints one JSON object. Usage: node peers.mjs WORKDIR N [N ...]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter, WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const require = createRequire(import.meta.url);
const express = require("express");
const PouchDB = require("pouchdb");

const [workdir, ...counts] = process.argv.slice(2);

// The same referral-sized document yilian's benchmarks use: ~17 fields and a 5-entry history.
function referral(i) {
  return {
    schema: 1, title: `转诊 referral ${i}`, patient_name: `患者${String(i).padStart(5, "0")}`,
    sex: i % 2 ? "M" : "F", birth_date: "1960-01-11", id_number: `4301021960${String(i).padStart(8, "0")}`,
    from: "TC-01", to: "CH-01", department: "普外科 General surgery", icd10: "K35.800",
    diagnosis: "急性阑尾炎 acute appendicitis, suspected", urgency: i % 7 ? "routine" : "green-channel",
    reason: "Right lower quadrant pain for 12 h, fever 38.2, WBC 13.1; needs surgical evaluation",
    treatment: "IV fluids, ceftriaxone 2 g, analgesia withheld pending exam", doctor: "Dr. Wang, attending",
    phone: "0731-8888-1234", created_ms: 1790000000000 + i,
    entries: ["requested", "viewed", "accepted", "slot 2026-12-01 09:30", "arrived"].map((text, k) => ({
      at: 1790000000000 + k * 60000, by: k % 2 ? "CH-01" : "TC-01", text,
    })),
  };
}

// Asks for documents 200 at a time: automerge-repo gives up on finds that wait too long when
// thousands are requested at once.
// Under load automerge-repo may answer "unavailable" for a document the server holds; ask again.
async function findOne(repo, id) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await repo.find(id);
    } catch (e) {
      if (attempt >= 9 || !String(e).includes("unavailable")) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function findAll(repo, ids) {
  for (let i = 0; i < ids.length; i += 200) {
    await Promise.all(ids.slice(i, i + 200).map((id) => findOne(repo, id)));
  }
}

async function automergeRepo(n, dir) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => wss.on("listening", r));
  const port = wss.address().port;
  const counter = { messages: 0, bytes: 0 };
  wss.on("connection", (sock) => {
    sock.on("message", (data) => { counter.messages++; counter.bytes += data.length; });
    const send = sock.send.bind(sock);
    sock.send = (data, ...rest) => { counter.messages++; counter.bytes += data.length ?? data.byteLength; return send(data, ...rest); };
  });
  const server = new Repo({
    network: [new WebSocketServerAdapter(wss)],
    storage: new NodeFSStorageAdapter(path.join(dir, "server")),
    // As automerge-repo-sync-server runs: answer requests, never push every document at a
    // newly connected peer (with 10,000 documents that flood timed finds out).
    peerId: "server", shareConfig: { announce: async () => false, access: async () => true },
  });
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(server.create(referral(i)).documentId);
  await server.flush();
  // A client repo that has met the server (find() fails at once without a peer).
  const connectClient = async () => {
    const repo = new Repo({
      network: [new WebSocketClientAdapter(`ws://127.0.0.1:${port}`)],
      storage: new NodeFSStorageAdapter(path.join(dir, "client")),
      // The client syncs what it holds with the server: that is the no-op reconnect's work.
      peerId: `client-${Math.random()}`, sharePolicy: async () => true,
    });
    await new Promise((r) => repo.networkSubsystem.once("peer", r));
    return repo;
  };
  const t0 = performance.now();
  let client = await connectClient();
  await findAll(client, ids);
  const firstSync = (performance.now() - t0) / 1000;
  await client.flush();
  await client.shutdown();
  // Reconnect with nothing changed: a new client repo on the same storage finds every document.
  await new Promise((r) => setTimeout(r, 200));
  counter.messages = 0; counter.bytes = 0;
  const t1 = performance.now();
  client = await connectClient();
  await findAll(client, ids);
  await new Promise((r) => setTimeout(r, 500)); // let trailing sync messages land
  const reconnect = { seconds: (performance.now() - t1) / 1000 - 0.5, messages: counter.messages, bytes: counter.bytes };
  await client.shutdown();
  await server.shutdown();
  wss.close();
  return { first_sync_s: firstSync, reconnect };
}

async function pouch(n, dir) {
  fs.mkdirSync(path.join(dir, "server"), { recursive: true });
  const Server = PouchDB.defaults({ prefix: path.join(dir, "server") + path.sep });
  const app = express();
  const counter = { requests: 0, bytes: 0 };
  app.use((req, res, next) => {
    counter.requests++;
    counter.bytes += Number(req.headers["content-length"] || 0);
    const write = res.write.bind(res);
    const end = res.end.bind(res);
    res.write = (chunk, ...rest) => { if (chunk) counter.bytes += Buffer.byteLength(chunk); return write(chunk, ...rest); };
    res.end = (chunk, ...rest) => { if (chunk && typeof chunk !== "function") counter.bytes += Buffer.byteLength(chunk); return end(chunk, ...rest); };
    next();
  });
  app.use("/", require("express-pouchdb")(Server, { mode: "minimumForPouchDB", logPath: path.join(dir, "log.txt") }));
  const http = await new Promise((r) => { const s = app.listen(0, "127.0.0.1", () => r(s)); });
  const port = http.address().port;
  const source = new Server("referrals");
  const docs = [];
  for (let i = 0; i < n; i++) docs.push({ _id: `ref-${String(i).padStart(6, "0")}`, ...referral(i) });
  for (let i = 0; i < docs.length; i += 1000) await source.bulkDocs(docs.slice(i, i + 1000));
  const local = new PouchDB(path.join(dir, "client-referrals"));
  const remote = `http://127.0.0.1:${port}/referrals`;
  const t0 = performance.now();
  const info = await PouchDB.replicate(remote, local);
  const firstSync = (performance.now() - t0) / 1000;
  counter.requests = 0; counter.bytes = 0;
  const t1 = performance.now();
  await PouchDB.replicate(remote, local);
  const reconnect = { seconds: (performance.now() - t1) / 1000, requests: counter.requests, bytes: counter.bytes };
  await local.close();
  await source.close();
  http.close();
  return { first_sync_s: firstSync, docs_written: info.docs_written, reconnect };
}

const out = { automerge_repo: {}, pouchdb: {} };
for (const c of counts) {
  const n = Number(c);
  const d = fs.mkdtempSync(path.join(workdir, `run-${n}-`));
  fs.mkdirSync(path.join(d, "am"));
  fs.mkdirSync(path.join(d, "pouch"));
  out.pouchdb[n] = await pouch(n, path.join(d, "pouch"));
  out.automerge_repo[n] = await automergeRepo(n, path.join(d, "am"));
}
console.log(JSON.stringify(out));
process.exit(0);
