// One hot-path RPC, driven by k6 through server reflection (bench/api.py runs it).
//
// Environment (all set by bench/api.py):
//   TARGET    host:port, loopback only
//   RPC       method name on customer.v1.CustomerService
//   IDS       path of a JSON array of customer ids
//   RUN       a tag unique to this k6 run: RedeemReward's order ids and keys start with it
//   VUS, DURATION, SUMMARY (path of the JSON summary handleSummary writes)
//   RATE      calls per second at a fixed arrival rate, VUS of them at most in
//             flight (empty: VUS callers as fast as they can, the req/s figure)
//   TOKEN     a bearer token sent with every call (empty: none)
import grpc from 'k6/net/grpc';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';

const ids = JSON.parse(open(__ENV.IDS));
const REWARD = 'rewards/5eed0000-0000-4000-8000-000000000001'; // 25 points, no tier
const ok = new Counter('rpc_ok');
const failed = new Counter('rpc_failed');

const rate = parseInt(__ENV.RATE || '0', 10);
export const options = {
  scenarios: {
    load: rate > 0
      ? {
        executor: 'constant-arrival-rate',
        rate,
        timeUnit: '1s',
        preAllocatedVUs: parseInt(__ENV.VUS, 10),
        duration: __ENV.DURATION,
        gracefulStop: '5s',
      }
      : {
        executor: 'constant-vus',
        vus: parseInt(__ENV.VUS, 10),
        duration: __ENV.DURATION,
        gracefulStop: '5s',
      },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(50)', 'p(99)', 'max'],
};

const client = new grpc.Client();
let connected = false;
let logged = 0;
const params = { timeout: '5s' };
if (__ENV.TOKEN) {
  params.metadata = { authorization: `Bearer ${__ENV.TOKEN}` };
}

function request(i) {
  const customer = `customers/${ids[i % ids.length]}`;
  switch (__ENV.RPC) {
    case 'ValidateCustomer':
      return { customer };
    case 'GetOrderContext':
      return { customer };
    case 'GetCustomer':
      return { name: customer };
    case 'GetUsualOrder':
      return { customer };
    case 'QuoteRedemption':
      return { customer, reward: REWARD, order_id: `quote-${i % 997}` };
    case 'RedeemReward':
      // A fresh order and key every iteration: each call is a real new redemption.
      return {
        customer, reward: REWARD,
        order_id: `${__ENV.RUN}-${i}`, idempotency_key: `${__ENV.RUN}-${i}`,
      };
    default:
      throw new Error(`unknown RPC ${__ENV.RPC}`);
  }
}

export default function () {
  if (!connected) {
    client.connect(__ENV.TARGET, { plaintext: true, reflect: true, timeout: '10s' });
    connected = true;
  }
  const i = exec.scenario.iterationInTest;
  const res = client.invoke(`customer.v1.CustomerService/${__ENV.RPC}`, request(i), params);
  if (res && res.status === grpc.StatusOK) {
    ok.add(1);
  } else {
    failed.add(1, { status: String(res ? res.status : 'none') });
    if (logged < 3) { // a few per VU, so the reason shows without flooding
      logged += 1;
      console.error(`${__ENV.RPC}: status ${res && res.status}: ${res && res.error && res.error.message}`);
    }
  }
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data) };
}
