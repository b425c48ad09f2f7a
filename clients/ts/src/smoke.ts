// Run by .ci/contract.sh against a live server (issue 15, item 5): list, create with an
// Idempotency-Key (and its replay), read back, and a 400 read as Problem Details.
//   tsc -p . --noEmit false --outDir <dir> --module commonjs --moduleResolution node10 && node <dir>/smoke.js URL TOKEN
import { ApiError, SwitchyardClient } from "./client";

// Node's globals, without @types/node.
declare const process: { argv: string[]; exit(code: number): never };

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`typescript client: ${what}`);
  console.log(`typescript client: ok: ${what}`);
}

async function main(baseUrl: string, token: string): Promise<void> {
  const client = new SwitchyardClient(baseUrl, token);
  const users = await client.listUsers(1);
  const author = users.results[0];
  check(author !== undefined && users.count >= 1, "list users");
  if (author === undefined) return;

  const page = await client.listPosts({ page_size: 5, ordering: ["-id"] });
  const ids = page.results.map((post) => post.id);
  check(ids.every((id, i) => i === 0 || (ids[i - 1] ?? 0) > id), `list posts, newest id first (${page.count} in all)`);

  const key = `ts-client-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const body = { title: "Written by the TypeScript client", content: "smoke", author_id: author.id };
  const first = await client.createPostOnce(body, key);
  check(first.location === `/api/v1/posts/${first.body.id}/` && !first.replayed, "create a post (201, Location)");
  const again = await client.createPostOnce(body, key);
  check(again.replayed && again.body.id === first.body.id, "the same Idempotency-Key replays the first answer");
  const read = await client.getPost(first.body.id);
  check(read.title === body.title && read.author_id === author.id, "read it back");

  try {
    await client.createPost({ title: "", author_id: author.id });
    check(false, "an empty title must be refused");
  } catch (error) {
    check(
      error instanceof ApiError &&
        error.contentType.startsWith("application/problem+json") &&
        error.problem.status === 400 &&
        error.problem.errors.some((e) => e.field === "title"),
      "an empty title is a 400 read as Problem Details naming `title`",
    );
  }
}

const [baseUrl, token] = process.argv.slice(2);
if (!baseUrl || !token) throw new Error("usage: node smoke.js BASE_URL TOKEN");
main(baseUrl, token).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
