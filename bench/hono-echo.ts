// The "realistic function" of `npm run bench`: a Hono app echoing a 1 KB JSON body, bundled from npm
// and served unchanged by workerd and by Hearth.
import { Hono } from "hono";

const app = new Hono();
app.post("/echo", async (c) => c.json(await c.req.json()));
app.get("/", (c) => c.text("hello world"));

export default app;
