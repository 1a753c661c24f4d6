// The core scenario (core_scenario.mjs) in headless Firefox ESR through geckodriver.
import { coreScenario } from './core_scenario.mjs';

coreScenario('firefox');
