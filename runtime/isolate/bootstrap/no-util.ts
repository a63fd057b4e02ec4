/**
 * Stands in for Node's `util` inside the isolate: object-inspect asks it for `util.inspect.custom`
 * (its browser build leaves it out the same way); an object without `custom` says there is none, and there is no Node in an isolate.
 */
export const inspect = {};
