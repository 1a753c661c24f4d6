// The core scenario (core_scenario.mjs) in WebKit, Safari's engine: WebKitGTK's MiniBrowser
// through WebKitWebDriver under a virtual display.
import { coreScenario } from './core_scenario.mjs';

coreScenario('webkit');
