/** The ceiling for a Node process: bare node:http answering what bench/hello.js answers. */
import { createServer } from "node:http";

const port = Number(process.argv[2]);
createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("hello world");
}).listen(port, "127.0.0.1", () => process.send?.("ready"));
