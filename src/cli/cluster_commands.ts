/**
 * `tickraft cluster …`: the cluster view and membership changes. Join, leave and leadership
 * transfer call endpoints that only a node in cluster mode serves; any other node answers 404,
 * which is reported as such rather than as a failure of the request.
 */
import { ApiError, type JsonObject } from "./client.ts";
import { type Command, CommandError, emit, optional, required } from "./command.ts";
import { objectText } from "./format.ts";

/** Runs `request`; a 404 for want of the route becomes a message saying what it means. */
async function clusterCall(
  base_url: string,
  what: string,
  request: () => Promise<unknown>,
): Promise<unknown> {
  try {
    return await request();
  } catch (error) {
    if (!(error instanceof ApiError) || !error.routeMissing) throw error;
    throw new CommandError(
      `the node at ${base_url} does not support "cluster ${what}" yet, or is not in cluster mode ` +
        `(${error.method} ${error.path} answered 404: ${error.message})`,
    );
  }
}

function resultText(done: string): (result: unknown) => string {
  return (result) =>
    typeof result === "object" && result !== null && Object.keys(result).length > 0
      ? `${done}\n\n${objectText(result as JsonObject)}`
      : done;
}

const status: Command = {
  summary: "Members, roles, term, commit and applied index (GET /debug/cluster, GET /health)",
  args: [],
  options: {},
  run: async (input) => {
    const [cluster, health] = await Promise.all([
      input.client.cluster(),
      input.client.health(),
    ]);
    emit(
      input,
      { cluster, health },
      (v) => `${objectText(v.cluster)}\n\nhealth:\n${objectText(v.health)}`,
    );
  },
};

const join: Command = {
  summary: "Add a node to the cluster (POST /join)",
  args: [],
  options: {
    "node-id": { type: "string", placeholder: "id", help: "The new node's NODE_ID (required)" },
    address: {
      type: "string",
      placeholder: "url",
      help: "Where the other nodes reach it (required)",
    },
  },
  examples: ["tickraft cluster join --node-id node-2 --address http://10.0.0.2:8080"],
  run: async (input) => {
    const node_id = required(input.values, "node-id");
    const address = required(input.values, "address");
    const result = await clusterCall(
      input.client.base_url,
      "join",
      () => input.client.join(node_id, address),
    );
    emit(input, result, resultText(`asked the cluster to add ${node_id} at ${address}`));
  },
};

const leave: Command = {
  summary: "Remove a node from the cluster (DELETE /cluster/members/{id})",
  args: [],
  options: {
    "node-id": { type: "string", placeholder: "id", help: "The member to remove (required)" },
  },
  run: async (input) => {
    const node_id = required(input.values, "node-id");
    const result = await clusterCall(
      input.client.base_url,
      "leave",
      () => input.client.leave(node_id),
    );
    emit(input, result, resultText(`asked the cluster to remove ${node_id}`));
  },
};

const transferLeader: Command = {
  summary: "Hand leadership to another member (POST /cluster/transfer-leader)",
  args: [],
  options: {
    to: { type: "string", placeholder: "id", help: "The member to lead (default: the node picks)" },
  },
  run: async (input) => {
    const to = optional(input.values, "to");
    const result = await clusterCall(
      input.client.base_url,
      "transfer-leader",
      () => input.client.transferLeader(to),
    );
    emit(input, result, resultText(`asked the leader to hand over to ${to ?? "another member"}`));
  },
};

/** The `cluster` commands by name. */
export const CLUSTER_COMMANDS: Record<string, Command> = {
  status,
  join,
  leave,
  "transfer-leader": transferLeader,
};
