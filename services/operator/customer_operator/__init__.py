"""The kopf operator: RewardCampaign custom resources into points rules."""
