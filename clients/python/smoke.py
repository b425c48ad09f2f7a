"""A small script with the Python client that openapi-python-client generates from the committed
schema, run by .ci/contract.sh against a live server (issue 15, item 5).

    openapi-python-client generate --path openapi/schema.yaml --meta none \
        --output-path "$WORK/switchyard_client"
    PYTHONPATH="$WORK" python clients/python/smoke.py http://127.0.0.1:8000 "$TOKEN"

The token goes in ``Authorization: Token <key>``: the generated ``AuthenticatedClient`` defaults
to ``Bearer``, so pass ``prefix="Token"``. Exits non-zero on the first answer that is not what the
contract says."""

from __future__ import annotations

import sys
import uuid

from switchyard_client import AuthenticatedClient
from switchyard_client.api.posts import posts_create, posts_list, posts_retrieve
from switchyard_client.api.users import users_list
from switchyard_client.models import PostInput, PostOutput, PostsListOrderingItem, Problem


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"python client: {what}")
    print(f"python client: ok: {what}")


def main(base_url: str, token: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=token, prefix="Token", raise_on_unexpected_status=True)
    with client as c:
        users = users_list.sync(client=c, page_size=1)
        check(users is not None and users.count >= 1 and len(users.results) == 1, "list users")
        author_id = users.results[0].id

        page = posts_list.sync(client=c, page_size=5, ordering=[PostsListOrderingItem.ID_DESC])
        check(page is not None and len(page.results) <= 5, f"list posts, newest id first ({page.count} in all)")
        ids = [post.id for post in page.results]
        check(ids == sorted(ids, reverse=True), "ordering=-id honoured")

        key = f"python-client-{uuid.uuid4()}"
        body = PostInput(title="Written by the generated Python client", content="smoke", author_id=author_id)
        first = posts_create.sync_detailed(client=c, body=body, idempotency_key=key)
        check(first.status_code == 201 and isinstance(first.parsed, PostOutput), "create a post (201)")
        created = first.parsed
        check(first.headers.get("Location") == f"/api/v1/posts/{created.id}/", "Location names the post")
        again = posts_create.sync_detailed(client=c, body=body, idempotency_key=key)
        check(
            again.status_code == 201
            and again.headers.get("Idempotent-Replayed") == "true"
            and isinstance(again.parsed, PostOutput)
            and again.parsed.id == created.id,
            "the same Idempotency-Key replays the first answer",
        )
        read = posts_retrieve.sync(client=c, id=created.id)
        check(read is not None and read.title == body.title and read.author_id == author_id, "read it back")

        bad = posts_create.sync_detailed(client=c, body=PostInput(title="", author_id=author_id))
        problem = bad.parsed
        check(
            bad.status_code == 400
            and bad.headers["Content-Type"].startswith("application/problem+json")
            and isinstance(problem, Problem)
            and problem.status == 400
            and any(error.field == "title" for error in problem.errors),
            "an empty title is a 400 read as Problem Details naming `title`",
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
