/** The run folder: a lower layer that retrievers/, ranker/, report/ and pipeline/ all use. */
export * from "./config.js";
export * from "./dataset.js";
export * from "./paths.js";
