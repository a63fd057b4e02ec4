/** The scheduler: node registry, placement and the cold-path activator. */

export { Activator } from "./activator.ts";
export { main } from "./main.ts";
export { NodeRegistry } from "./node-registry.ts";
export { rankNodesFor } from "./placement.ts";
export type { SchedulerOptions } from "./scheduler.ts";
export { Scheduler } from "./scheduler.ts";
