/**
 * The client against the real server: `duet-server` (the binary named by DUET_SERVER_BIN) on a
 * scratch SQLite database, with authentication on, and clients speaking over real WebSockets
 * (the `ws` package: Node 20 has none of its own). Runs only when DUET_SERVER_BIN is set
 * (scripts/web-test.sh sets it), so that the unit tests stay fast; vitest.config.ts picks this
 * file up only then.
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { DuetClient, type DuetClientOptions, type DuetEvents, TextOperation } from "../src/index.js";
import { randomEdit, seeded } from "./random.js";

const binary = process.env["DUET_SERVER_BIN"]!;
const secret = "interop-test-secret-that-is-long-enough-0123456789";
/** How much history the server keeps: small, so that a client can fall out of it. */
const HISTORY_OPS = 8;
/** How long anything may take before a test gives up. */
const PATIENCE_MS = 15_000;

let server: ChildProcess;
let directory: string;
let base: string;
let owner: string;
let serverLog = "";

function mint(role: "viewer" | "editor" | "owner", sub: string, room = "*"): string {
  return execFileSync(binary, ["token", "--sub", sub, "--room", room, "--role", role], {
    env: { ...process.env, DUET_AUTH_SECRET: secret },
  })
    .toString()
    .trim();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { authorization: `Bearer ${owner}` };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
  }
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text === "" ? undefined : JSON.parse(text) };
}

async function createRoom(code: string, language = "python"): Promise<string> {
  const created = await http("POST", "/rooms", { language, code });
  expect(created.status).toBe(201);
  return (created.json as { roomId: string }).roomId;
}

async function roomCode(roomId: string): Promise<string> {
  const room = await http("GET", `/rooms/${roomId}`);
  expect(room.status).toBe(200);
  return (room.json as { code: string }).code;
}

/** The sockets a client opened, so that a test can cut one as a network would. */
class Sockets {
  readonly opened: WebSocket[] = [];
  /** Every frame the client sent, on any of its sockets. */
  readonly sent: string[] = [];
  /** While true, connections go to a port nobody listens on. */
  offline = false;
  deadPort = 0;

  get WebSocket(): NonNullable<DuetClientOptions["WebSocket"]> {
    const sockets = this;
    return class extends WebSocket {
      constructor(url: string, protocols: string[]) {
        super(sockets.offline ? url.replace(/:\d+\//, `:${sockets.deadPort}/`) : url, protocols);
        sockets.opened.push(this);
      }

      override send(data: string): void {
        sockets.sent.push(data);
        super.send(data);
      }
    };
  }

  get current(): WebSocket {
    return this.opened.at(-1)!;
  }
}

interface Member {
  client: DuetClient;
  sockets: Sockets;
  errors: DuetEvents["error"][];
}

const members: Member[] = [];

function connect(roomId: string, name: string, token: string | undefined, options: Partial<DuetClientOptions> = {}): Member {
  const sockets = new Sockets();
  const client = new DuetClient({
    url: base,
    roomId,
    name,
    ...(token === undefined ? {} : { token }),
    WebSocket: sockets.WebSocket,
    fetch: null,
    network: null,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    ...options,
  });
  const member: Member = { client, sockets, errors: [] };
  client.on("error", (error) => member.errors.push(error));
  members.push(member);
  client.connect();
  return member;
}

/** Resolves once `condition` holds, checking whenever one of the clients reports something. */
function until(clients: DuetClient[], condition: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const offs: (() => void)[] = [];
    const done = (error?: Error) => {
      clearTimeout(timer);
      offs.forEach((off) => off());
      if (error === undefined) {
        resolve();
      } else {
        reject(error);
      }
    };
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}\nserver log:\n${serverLog.slice(-2_000)}`)), PATIENCE_MS);
    const check = () => {
      if (condition()) {
        done();
      }
    };
    for (const client of clients) {
      for (const event of ["status", "welcome", "ack", "remoteChange", "presence", "error", "language"] as const) {
        offs.push(client.on(event, check));
      }
    }
    check();
  });
}

const settled = (clients: DuetClient[]) => () =>
  clients.every(
    (client) => client.status.state === "connected" && client.isSynchronized && client.text === clients[0]!.text,
  );

/** Lets the event loop turn, so that typing interleaves with the network. */
const tick = (random: () => number) => new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 4)));

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), "duet-interop-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(binary, [], {
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${directory}/duet.db?mode=rwc`,
      DUET_BIND: `127.0.0.1:${port}`,
      DUET_AUTH_SECRET: secret,
      DUET_HISTORY_OPS: String(HISTORY_OPS),
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout?.on("data", (chunk: Buffer) => (serverLog += chunk.toString()));
  server.stderr?.on("data", (chunk: Buffer) => (serverLog += chunk.toString()));
  owner = mint("owner", "interop-owner");
  // Ready when it answers; it creates and migrates the database first.
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) {
        break;
      }
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline || server.exitCode !== null) {
      throw new Error(`the server did not start:\n${serverLog}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

afterAll(async () => {
  for (const member of members) {
    member.client.close();
  }
  if (server !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(directory, { recursive: true, force: true });
});

describe("against duet-server", () => {
  it("two clients typing at once converge on the room's code", async () => {
    const roomId = await createRoom("def main():\n    print('😀')\n");
    const alice = connect(roomId, "Alice", mint("editor", "alice"), { batch: true });
    const bob = connect(roomId, "Bob", mint("editor", "bob"), { batch: false });
    const clients = [alice.client, bob.client];
    await until(clients, settled(clients), "both welcomes");
    expect(alice.client.text).toBe("def main():\n    print('😀')\n");

    // Remote edits that had to be moved past local ones not yet acknowledged: real concurrency.
    let crossed = 0;
    for (const client of clients) {
      client.on("remoteChange", () => {
        if (!client.isSynchronized) {
          crossed++;
        }
      });
    }
    const random = seeded(2024);
    // 150 rounds at least, and on until edits have crossed (a slow server acknowledges fewer
    // edits while the typing lasts, so fewer cross), up to a bound.
    for (let round = 0; round < 150 || (crossed <= 10 && round < 3_000); round++) {
      for (const member of [alice, bob]) {
        if (random() < 0.7) {
          member.client.applyLocal(randomEdit(random, member.client.text));
        }
      }
      await tick(random);
    }
    await until(clients, settled(clients), "convergence");
    expect(crossed).toBeGreaterThan(10);
    expect(await roomCode(roomId)).toBe(alice.client.text);
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  });

  it("shows each other's cursors and answers completions", async () => {
    const roomId = await createRoom("pri", "python");
    const alice = connect(roomId, "Alice", mint("editor", "alice"));
    const bob = connect(roomId, "Bob", mint("editor", "bob"));
    const clients = [alice.client, bob.client];
    await until(clients, settled(clients), "both welcomes");
    await until(clients, () => alice.client.participants.has(bob.client.clientId!), "Bob to join");
    bob.client.setSelection({ anchor: 1, head: 3 });
    await until(clients, () => alice.client.participants.get(bob.client.clientId!)?.selection?.head === 3, "Bob's cursor");
    expect(alice.client.participants.get(bob.client.clientId!)).toEqual({
      clientId: bob.client.clientId,
      name: "Bob",
      selection: { anchor: 1, head: 3 },
    });
    const completion = await alice.client.requestCompletion(3);
    expect(completion.suggestion).toBe("nt");
    expect(Array.isArray(completion.alternatives)).toBe(true);
  });

  it("resumes after a dropped connection, resending what was in flight", async () => {
    const roomId = await createRoom("");
    const alice = connect(roomId, "Alice", mint("editor", "alice"));
    const bob = connect(roomId, "Bob", mint("editor", "bob"));
    const clients = [alice.client, bob.client];
    await until(clients, settled(clients), "both welcomes");
    const random = seeded(7);
    for (let round = 0; round < 40; round++) {
      alice.client.applyLocal(randomEdit(random, alice.client.text));
      bob.client.applyLocal(randomEdit(random, bob.client.text));
      if (round % 10 === 5) {
        alice.sockets.current.terminate(); // no close frame: as a lost network
      }
      await tick(random);
    }
    await until(clients, settled(clients), "convergence after drops");
    expect(alice.sockets.opened.length).toBeGreaterThan(1);
    // A reconnection resumed where it was (one may also have started over, when more was
    // missed meanwhile than the server keeps).
    const reconnections = alice.sockets.opened.slice(1).map((socket) => socket.url);
    expect(reconnections.some((url) => /resumeToken=.+&since=\d+/.test(url)), reconnections.join("\n")).toBe(true);
    expect(await roomCode(roomId)).toBe(alice.client.text);
  });

  it("merges edits made offline into the room's text when the server no longer holds what was missed", async () => {
    const roomId = await createRoom("shared\n");
    const alice = connect(roomId, "Alice", mint("editor", "alice"));
    const bob = connect(roomId, "Bob", mint("editor", "bob"));
    const clients = [alice.client, bob.client];
    await until(clients, settled(clients), "both welcomes");
    alice.sockets.deadPort = await freePort();
    alice.sockets.offline = true;
    alice.sockets.current.terminate();
    await until([alice.client], () => alice.client.status.state === "reconnecting", "Alice to notice");
    alice.client.applyLocal(TextOperation.replace(alice.client.text.length, 0, 0, "# Alice was here\n"));
    for (let line = 0; line < HISTORY_OPS + 4; line++) {
      bob.client.applyLocal(TextOperation.replace(bob.client.text.length, bob.client.text.length, 0, `bob ${line}\n`));
      await until([bob.client], () => bob.client.isSynchronized, "Bob's edit");
    }
    const welcomes: DuetEvents["welcome"][] = [];
    alice.client.on("welcome", (welcome) => welcomes.push(welcome));
    alice.sockets.offline = false;
    await until(clients, settled(clients), "convergence after a resync");
    expect(welcomes.map((welcome) => welcome.resumed)).toEqual([false]);
    const code = await roomCode(roomId);
    expect(code).toBe(alice.client.text);
    expect(code.startsWith("# Alice was here\nshared\nbob 0\n")).toBe(true);
    expect(code.match(/Alice was here/g)).toHaveLength(1);
    // Re-applied in one go, as a whole buffer the server diffs.
    const resent = JSON.parse(alice.sockets.sent.at(-1)!) as { type: string; code: string };
    expect(resent.type).toBe("code");
    expect(resent.code).toBe(code);
  });

  it("takes back a viewer's edits, refuses a client without a token, and closes everyone when the room is deleted", async () => {
    const roomId = await createRoom("read me");
    const viewer = connect(roomId, "Guest", mint("viewer", "guest", roomId));
    const editor = connect(roomId, "Editor", mint("editor", "editor"));
    await until([viewer.client, editor.client], settled([viewer.client, editor.client]), "both welcomes");
    viewer.client.applyLocal(TextOperation.replace(7, 0, 0, "!"));
    expect(viewer.client.text).toBe("!read me");
    await until([viewer.client], () => viewer.client.text === "read me" && viewer.client.isSynchronized, "the revert");
    expect(viewer.errors.map((error) => error.code)).toEqual(["forbidden"]);

    const stranger = connect(roomId, "Stranger", undefined);
    await until([stranger.client], () => stranger.client.status.state === "closed", "the refusal");
    expect(stranger.client.status).toMatchObject({ state: "closed", code: 401 });

    expect((await http("DELETE", `/rooms/${roomId}`)).status).toBe(204);
    await until([editor.client], () => editor.client.status.state === "closed", "the deletion");
    expect(editor.client.status).toMatchObject({ state: "closed", code: 4404 });
  });
});
