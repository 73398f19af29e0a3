// Loads node-llama-cpp from the node_modules folder tools/install-deps.sh filled (ES modules
// ignore NODE_PATH, so the folder is named), on the CPU, from its prebuilt binary only.
import path from "node:path";
import {pathToFileURL} from "node:url";

export async function loadEngine(modulesDir, modelPath) {
  if (!modulesDir) throw new Error("--modules DIR (the node_modules holding node-llama-cpp) is required");
  const entry = path.join(modulesDir, "node-llama-cpp", "dist", "index.js");
  const {getLlama} = await import(pathToFileURL(entry).href);
  const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
  return llama.loadModel({modelPath});
}
