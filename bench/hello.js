// The hello-world function every peer serves in `npm run bench` (workerd and Hearth run this same file).
export default {
  fetch() {
    return new Response("hello world", { headers: { "content-type": "text/plain" } });
  },
};
