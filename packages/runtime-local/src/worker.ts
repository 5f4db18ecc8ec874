// The default trainer thread.
import { serveTrainer } from "./trainer.ts";

serveTrainer();
