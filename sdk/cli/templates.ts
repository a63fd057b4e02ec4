/** What `hearth init --template <name>` writes: a hearth.toml, the function's source, and its npm dependencies. */
export interface Template {
  readonly summary: string;
  readonly files: Readonly<Record<string, string>>;
  /** Added to package.json's dependencies. */
  readonly dependencies: Readonly<Record<string, string>>;
}

const toml = (
  name: string,
  extra = "",
) => `# Hearth project file: \`hearth deploy\` deploys every [[functions]] table; docs: docs/project.md in Hearth's repository.
[[functions]]
name = "${name}"
entry = "src/index.ts"
compatibility_date = "2026-11-01"

[functions.limits]
memory_mb = 128
timeout_ms = 10000
${extra}`;

export const TEMPLATES: Readonly<Record<string, Template>> = {
  hello: {
    summary: "a fetch handler answering JSON",
    dependencies: {},
    files: {
      "hearth.toml": toml("hello", '\n[functions.env]\nGREETING = "Hello"\n'),
      "src/index.ts": `import type { ExportedHandler } from "hearth-sdk";

interface Env {
  GREETING: string;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const name = url.searchParams.get("name") ?? "world";
    return Response.json({ message: \`\${env.GREETING}, \${name}!\`, method: request.method });
  },
} satisfies ExportedHandler<Env>;
`,
    },
  },
  hono: {
    summary: "a Hono app with two routes",
    dependencies: { hono: "^4.6.0" },
    files: {
      "hearth.toml": toml("api"),
      "src/index.ts": `import { Hono } from "hono";
import type { ExportedHandler } from "hearth-sdk";

// Hearth serves the function at /fn/api/…; the app sees the path after it, so routes start at "/".
const app = new Hono();

app.get("/", (c) => c.text("Hello from Hono on Hearth"));
app.get("/users/:id", (c) => c.json({ id: c.req.param("id") }));
app.post("/echo", async (c) => c.json(await c.req.json()));

export default app satisfies ExportedHandler;
`,
    },
  },
  queue: {
    summary: "a queue consumer fed by a NATS subject",
    dependencies: {},
    files: {
      "hearth.toml": toml(
        "orders",
        '\n[[functions.triggers]]\nsource = "nats://orders.created"\nbatch_size = 10\nretries = 3\n',
      ),
      "src/index.ts": `import type { ExportedHandler } from "hearth-sdk";

interface Order {
  id: string;
  total: number;
}

export default {
  // Batches of up to 10 messages from nats://orders.created (hearth.toml). An undecided message is
  // acked when this returns and retried when it throws; retry() one to try it alone again later.
  async queue(batch) {
    for (const message of batch.messages) {
      const order = message.body;
      if (typeof order.total !== "number") {
        console.warn("order without a total", message.id);
        message.ack();
        continue;
      }
      console.log(\`order \${order.id}: \${order.total.toFixed(2)}\`);
    }
  },
} satisfies ExportedHandler<Record<string, string>, Order>;
`,
    },
  },
  cron: {
    summary: "a scheduled handler run every five minutes",
    dependencies: {},
    files: {
      "hearth.toml": toml("report", '\n[[functions.triggers]]\ncron = "*/5 * * * *"\n'),
      "src/index.ts": `import type { ExportedHandler } from "hearth-sdk";

export default {
  // Every five minutes (UTC), from the cron trigger in hearth.toml.
  async scheduled(event, _env, ctx) {
    const due = new Date(event.scheduledTime).toISOString();
    ctx.waitUntil(Promise.resolve(console.log(\`report due at \${due}\`)));
  },
} satisfies ExportedHandler;
`,
    },
  },
};

/** Shared by every template: how TypeScript sees a function (web APIs, no Node). */
export const TSCONFIG = `{
  "compilerOptions": {
    "target": "es2024",
    "module": "esnext",
    "moduleResolution": "bundler",
    "lib": ["es2024", "dom", "dom.iterable"],
    "types": [],
    "strict": true,
    "noEmit": true,
    "skipLibCheck": true
  },
  "include": ["src"]
}
`;
