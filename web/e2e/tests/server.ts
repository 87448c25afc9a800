// A real duet-server for each test: SQLite in a directory of its own, a port the system picks,
// killed and restarted on the same port and files when a test asks.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const binary = process.env.DUET_SERVER_BIN;

export class DuetServer {
  private child: ChildProcess | undefined;
  private constructor(
    private readonly directory: string,
    private readonly env: Record<string, string>,
    public bind: string,
  ) {}

  /** Starts a server on a fresh database; `env` adds settings (DUET_AUTH_SECRET, say). */
  static async start(env: Record<string, string> = {}): Promise<DuetServer> {
    if (!binary) {
      throw new Error('DUET_SERVER_BIN must name the duet-server binary (make test-web sets it)');
    }
    const directory = mkdtempSync(join(tmpdir(), 'duet-e2e-'));
    const server = new DuetServer(directory, env, '127.0.0.1:0');
    await server.launch();
    return server;
  }

  get url(): string {
    return `http://${this.bind}`;
  }

  /** Starts the process and waits for the line saying where it listens. */
  private async launch(): Promise<void> {
    const child = spawn(binary as string, [], {
      cwd: this.directory,
      env: {
        PATH: process.env.PATH ?? '',
        RUST_LOG: 'info',
        DATABASE_URL: `sqlite://${join(this.directory, 'duet.db')}?mode=rwc`,
        DUET_BIND: this.bind,
        // Every page of a test comes from 127.0.0.1.
        DUET_ROOMS_PER_MINUTE: '10000',
        ...this.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    const lines = createInterface({ input: child.stderr! });
    this.bind = await new Promise<string>((resolve, reject) => {
      const failed = () => reject(new Error('duet-server exited before it listened'));
      child.once('exit', failed);
      lines.on('line', (line) => {
        const address = /address=(\S+)/.exec(line);
        if (address) {
          child.off('exit', failed);
          resolve(address[1]);
        }
      });
    });
  }

  /** SIGKILL: no shutdown, no snapshot, as a crash. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts again on the same port and files. */
  async restart(): Promise<void> {
    await this.launch();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.directory, { recursive: true, force: true });
  }

  async createRoom(body: Record<string, unknown> = {}, token?: string): Promise<string> {
    const response = await fetch(`${this.url}/rooms`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
    });
    if (response.status !== 201) {
      throw new Error(`POST /rooms answered ${response.status}: ${await response.text()}`);
    }
    return ((await response.json()) as { roomId: string }).roomId;
  }

  async code(room: string, token?: string): Promise<string> {
    const response = await fetch(`${this.url}/rooms/${room}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    return ((await response.json()) as { code: string }).code;
  }
}
