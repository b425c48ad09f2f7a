// A small client of the Switchyard API, typed by the types that openapi-typescript generates from
// the committed schema (src/schema.d.ts, not committed: `npm run generate`). If the schema changes
// a path, a field or a status this client relies on, `tsc --noEmit` fails.
import type { components, paths } from "./schema";

type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;

export type Post = components["schemas"]["PostOutput"];
export type PostPage = Json<paths["/api/v1/posts/"]["get"]["responses"][200]>;
export type PostListQuery = NonNullable<paths["/api/v1/posts/"]["get"]["parameters"]["query"]>;
export type NewPost = NonNullable<paths["/api/v1/posts/"]["post"]["requestBody"]>["content"]["application/json"];
export type User = Json<paths["/api/v1/users/{id}/"]["get"]["responses"][200]>;
export type UserPage = Json<paths["/api/v1/users/"]["get"]["responses"][200]>;
export type Problem = components["schemas"]["Problem"];

export class ApiError extends Error {
  constructor(
    readonly problem: Problem,
    readonly contentType: string,
  ) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
  }
}

/** A created resource with the headers a caller needs from the 201. */
export interface Created<T> {
  body: T;
  location: string | null;
  replayed: boolean;
  pin: string | null;
}

export class SwitchyardClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async send(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Response> {
    const init: RequestInit = {
      method,
      headers: { Authorization: `Token ${this.token}`, "Content-Type": "application/json", ...extra },
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(this.baseUrl + path, init);
    if (!response.ok) {
      throw new ApiError((await response.json()) as Problem, response.headers.get("Content-Type") ?? "");
    }
    return response;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.send(method, path, body)).json()) as T;
  }

  listPosts(query: PostListQuery = {}): Promise<PostPage> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const qs = params.toString();
    return this.request<PostPage>("GET", `/api/v1/posts/${qs ? `?${qs}` : ""}`);
  }

  createPost(post: NewPost): Promise<Post> {
    return this.request<Post>("POST", "/api/v1/posts/", post);
  }

  /** POST with an `Idempotency-Key`: the same key and body answer the first 201 again. */
  async createPostOnce(post: NewPost, idempotencyKey: string): Promise<Created<Post>> {
    const response = await this.send("POST", "/api/v1/posts/", post, { "Idempotency-Key": idempotencyKey });
    return {
      body: (await response.json()) as Post,
      location: response.headers.get("Location"),
      replayed: response.headers.get("Idempotent-Replayed") === "true",
      pin: response.headers.get("X-Switchyard-Pin"),
    };
  }

  getPost(id: number): Promise<Post> {
    return this.request<Post>("GET", `/api/v1/posts/${id}/`);
  }

  listUsers(pageSize: number): Promise<UserPage> {
    return this.request<UserPage>("GET", `/api/v1/users/?page_size=${pageSize}`);
  }

  getUser(id: number): Promise<User> {
    return this.request<User>("GET", `/api/v1/users/${id}/`);
  }
}

// What a consumer writes: every name below is checked against the schema's types.
export async function example(client: SwitchyardClient): Promise<string> {
  const page = await client.listPosts({ page_size: 10, author_id: 1 });
  const titles: string[] = page.results.map((post: Post) => post.title);
  const first = page.results[0];
  const authorName: string | undefined = first?.author?.username;
  const created = await client.createPost({ title: "Hello", content: "from TypeScript", author_id: 1 });
  const user = await client.getUser(created.author_id);
  const count: number = page.count;
  return `${count} posts (${titles.join(", ")}), first by ${authorName ?? "nobody"}; ${user.username} wrote #${created.id}`;
}
